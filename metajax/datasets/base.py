"""The class-pool dataset every few-shot loader returns, and where data lives on disk."""

from __future__ import annotations

import dataclasses
import importlib
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "METAJAX_DATA_DIR"
CACHE_DIR_ENV = "METAJAX_CACHE_DIR"


class DataNotFoundError(ValueError, FileNotFoundError):
    """Raised when a dataset's files are neither on disk nor downloadable.

    It is a ``ValueError`` (bad data-directory argument) and a ``FileNotFoundError``.
    """


class CorruptDataError(ValueError):
    """Raised when a dataset file exists but cannot be read or fails verification."""


class MissingExtraError(ImportError, ValueError):
    """Raised when a dataset needs an optional package that is not installed.

    Its message is one line naming the dataset, the package and the extra that installs
    it. It is an ``ImportError`` and a ``ValueError`` (this dataset cannot be loaded
    here), so a command line that reports a ``ValueError`` in one line reports it too.
    """


def import_extra(module: str, *, needed_by: str, package: str, extra: str):
    """Imports ``module``, or raises :class:`MissingExtraError` naming ``extra``.

    Example:
      >>> try:
      ...     import_extra("no_such_module", needed_by="dataset uea:X", package="aeon",
      ...                  extra="timeseries")
      ... except MissingExtraError as e:
      ...     print(e)
      dataset uea:X needs aeon: pip install 'metajax[timeseries]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        # A package that is installed but cannot import one of its own dependencies.
        broken = f" (it cannot import {e.name})" if e.name and e.name.split(".")[0] != top else ""
        raise MissingExtraError(
            f"{needed_by} needs {package}{broken}: pip install 'metajax[{extra}]'"
        ) from e


# What the standard library raises on a damaged zip (or npz) archive, found by flipping
# and truncating bytes: besides BadZipFile, a flipped version or method field gives
# NotImplementedError, a flipped encryption flag RuntimeError, a cut header struct.error
# or EOFError, a bad length ValueError. Loaders turn these into CorruptDataError naming
# the file; image decoders add their own (Pillow also raises SyntaxError on bad chunks).
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,
)


@dataclasses.dataclass(frozen=True)
class FewShotDataset:
    """Class pools for meta-train / meta-validation / meta-test splits.

    Splits never share a class. Every pool is ``[classes, examples, *features]``,
    with the same number of examples for every class of a split.

    Attributes:
      name: a short name, e.g. ``"omniglot-vinyals"``.
      pools: split name -> ``np.ndarray`` pool.
      class_names: split name -> a name per class of that pool, in pool order.
    """

    name: str
    pools: Mapping[str, np.ndarray]
    class_names: Mapping[str, tuple[str, ...]]

    def __post_init__(self):
        if set(self.pools) != set(self.class_names):
            raise ValueError("pools and class_names must name the same splits")
        for split, pool in self.pools.items():
            if pool.ndim < 2 or pool.shape[0] != len(self.class_names[split]):
                raise ValueError(
                    f"split {split!r}: pool shape {pool.shape} does not match "
                    f"{len(self.class_names[split])} class names"
                )
        seen: dict[str, str] = {}
        for split, names in self.class_names.items():
            for n in names:
                if n in seen and seen[n] != split:
                    raise ValueError(f"class {n!r} is in both {seen[n]!r} and {split!r}")
                seen[n] = split

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.pools)

    def pool(self, split: str) -> np.ndarray:
        """The pool of ``split``; a ``ValueError`` lists the splits there are."""
        if split not in self.pools:
            raise ValueError(f"split must be one of {sorted(self.pools)}, got {split!r}")
        return self.pools[split]


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir`` if given, else ``$METAJAX_DATA_DIR``, else ``None``.

    Example:
      >>> resolve_data_dir("~/data").name
      'data'
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else ``$METAJAX_CACHE_DIR``, else ``~/.cache/metajax``.

    Caches never go next to the data: shared data directories are often read-only.

    Example:
      >>> str(resolve_cache_dir("/tmp/metajax-cache"))
      '/tmp/metajax-cache'
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "metajax"


def split_classes(
    class_ids: np.ndarray, fractions: Mapping[str, float], *, seed: int
) -> dict[str, np.ndarray]:
    """Partitions class ids into disjoint splits of the given fractions (a seeded shuffle).

    The last split takes the remainder so that every class lands in exactly one split.

    Example:
      >>> splits = split_classes(np.arange(10), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
      >>> {name: len(ids) for name, ids in splits.items()}
      {'train': 6, 'val': 2, 'test': 2}
    """
    if not fractions:
        raise ValueError("fractions must name at least one split")
    if any(f <= 0 for f in fractions.values()) or sum(fractions.values()) > 1 + 1e-9:
        raise ValueError(f"fractions must be positive and sum to at most 1, got {dict(fractions)}")
    order = np.random.default_rng(seed).permutation(np.asarray(class_ids))
    out, start = {}, 0
    names = list(fractions)
    for i, name in enumerate(names):
        stop = (
            len(order) if i == len(names) - 1 else start + int(round(fractions[name] * len(order)))
        )
        out[name] = np.sort(order[start:stop])
        if len(out[name]) == 0:
            raise ValueError(
                f"split {name!r} would hold no class; use more classes or a larger fraction"
            )
        start = stop
    return out
