"""A benchmark folder's own modules: ``train``, ``main`` and ``configs``, one folder at a time.

Every benchmark folder is a script folder, not a package, so that it can be copied and
run on its own: its modules import each other by their top-level names (``import train``,
``from configs import default``). Those names are the same in every folder, so before a
folder's modules are imported, another folder's are forgotten. This is what lets
several benchmarks share one process (pytest, or a test that calls ``main.main``).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

# The top-level module names that every benchmark folder defines for itself.
OWN = ("train", "main", "configs")
BENCHMARKS = Path(__file__).resolve().parent.parent


def _inside(module: ModuleType, folder: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(folder)


def _enter(folder: Path) -> None:
    """Forgets other folders' modules, puts ``folder`` first on ``sys.path`` and makes
    ``configs`` its ``configs/``."""
    for name in [m for m in sys.modules if m.split(".")[0] in OWN]:
        if name.split(".")[0] == "configs" or not _inside(sys.modules[name], folder):
            del sys.modules[name]
    while str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.path.insert(0, str(folder))
    # ``configs/`` has no __init__.py: as a namespace package it would span the configs/
    # of every benchmark folder on sys.path. It is this folder's alone.
    configs = importlib.util.module_from_spec(
        importlib.machinery.ModuleSpec("configs", None, is_package=True)
    )
    configs.__path__ = [str(folder / "configs")]
    sys.modules["configs"] = configs


def import_own(folder: str | os.PathLike, *names: str) -> tuple[ModuleType, ...]:
    """Imports ``names`` (``"train"``, ``"configs.default"``, ...) from ``folder``.

    A module already imported from ``folder`` is returned as it is, so that a test can
    patch ``train`` and then call ``main.main``; one of the same name from another
    folder is forgotten first. ``folder`` may also be a file in it (``__file__``).

    Example:
      >>> train, default = import_own(BENCHMARKS / "maml_sinusoid", "train", "configs.default")
      >>> default.get_config()["shots"]
      (5, 10)
    """
    folder = Path(folder).resolve()
    if folder.is_file():
        folder = folder.parent
    _enter(folder)
    return tuple(importlib.import_module(name) for name in names)


def load_config(folder: str | os.PathLike, name: str) -> dict:
    """``get_config()`` of ``<folder>/configs/<name>.py``, a benchmark folder's config.

    Example:
      >>> load_config(BENCHMARKS / "maml_sinusoid", "paper")["steps"]
      70000
    """
    folder = Path(folder).resolve()
    if not (folder / "configs" / f"{name}.py").is_file():
        raise ValueError(f"no config {name!r} in {folder / 'configs'}")
    _enter(folder)
    return importlib.import_module(f"configs.{name}").get_config()


def config_names(folder: str | os.PathLike) -> list[str]:
    """The configs a benchmark folder offers: its ``configs/*.py``, ``default`` first.

    Example:
      >>> config_names(BENCHMARKS / "maml_sinusoid")
      ['default', 'paper']
    """
    names = sorted(p.stem for p in (Path(folder) / "configs").glob("*.py") if p.stem[0] != "_")
    return sorted(names, key=lambda n: n != "default")
