"""Parameter files written atomically: a crash mid-write never replaces a good file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flax import serialization


def save_params(path: str | os.PathLike, params: Any) -> Path:
    """Writes ``params`` (any pytree of arrays) as msgpack via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = serialization.to_bytes(params)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_params(path: str | os.PathLike, template: Any) -> Any:
    """Reads parameters saved by :func:`save_params` into the structure of ``template``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no parameter file at {path}")
    try:
        return serialization.from_bytes(template, path.read_bytes())
    except Exception as err:
        raise ValueError(f"{path} does not hold parameters of this model: {err}") from err
