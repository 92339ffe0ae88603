"""What the benchmarks' smoke tests share: their own modules, and generated data.

A smoke test (``train_test.py``) imports its folder's modules with
:func:`~harness.folder.import_own` and runs ``train`` end to end on generated data in
the real dataset's shape (:func:`use_fake_data`), the way flax's examples test on
``tfds.testing.mock_data``: it checks the pipeline, the shapes and the records
everywhere, whether or not Omniglot or aeon is installed, in seconds. Whether the
models learn is for the library's tests, on real data.

Example:
  >>> pool = fake_omniglot().pool("test")
  >>> pool.shape, pool.dtype, float(pool.max())
  ((30, 20, 28, 28, 1), dtype('float32'), 1.0)
"""

from __future__ import annotations

import contextlib

import numpy as np

import metajax.datasets
import metajax.datasets.omniglot
import metajax.datasets.uea
from harness.folder import import_own
from metajax.core.episodes import Split
from metajax.datasets import FewShotDataset, UEADataset, uea_few_shot

# A few classes per split: enough for 20-way episodes, small enough to train in seconds.
VINYALS_CLASSES = {"train": 30, "val": 10, "test": 30}
# Lake's one-shot runs are 20 characters of one alphabet: (alphabets, characters each).
LAKE_ALPHABETS = {"train": (3, 10), "test": (2, 20)}
# name -> (train series, test series, length, channels, classes), as aeon ships them.
UEA_SHAPES = {
    "BasicMotions": (40, 40, 100, 6, 4),
    "JapaneseVowels": (270, 370, 29, 12, 9),
}
DRAWERS = 20  # every Omniglot character has 20 drawers, its examples


def _strokes(rng: np.random.Generator, classes: int, size: int) -> np.ndarray:
    """Binary images ``[classes, 20, size, size, 1]``: a template per class, redrawn noisily."""
    template = rng.random((classes, 1, size, size, 1)) < 0.15
    flips = rng.random((classes, DRAWERS, size, size, 1)) < 0.05
    return (template ^ flips).astype(np.float32)


def fake_omniglot(protocol: str = "vinyals", image_size: int = 28, *, seed: int = 0):
    """A small Omniglot in the real one's shape: ``[classes, 20, size, size, 1]`` ink pools.

    The splits and the class names are the real protocol's (``"Alphabet/characterNN"``,
    with ``/rotDDD`` under Vinyals'), with fewer classes (:data:`VINYALS_CLASSES`,
    :data:`LAKE_ALPHABETS`).
    """
    rng = np.random.default_rng(seed)
    pools, names = {}, {}
    if protocol in ("vinyals", "omniglot", "omniglot-vinyals"):
        for split, classes in VINYALS_CLASSES.items():
            pools[split] = _strokes(rng, classes, image_size)
            names[split] = tuple(
                f"{split.title()}/character{c // 4 + 1:02d}/rot{90 * (c % 4):03d}"
                for c in range(classes)
            )
        return FewShotDataset(name="omniglot-vinyals", pools=pools, class_names=names)
    if protocol in ("lake", "omniglot-lake"):
        for split, (alphabets, characters) in LAKE_ALPHABETS.items():
            pools[split] = _strokes(rng, alphabets * characters, image_size)
            names[split] = tuple(
                f"{split.title()}{a}/character{c + 1:02d}"
                for a in range(alphabets)
                for c in range(characters)
            )
        return FewShotDataset(name="omniglot-lake", pools=pools, class_names=names)
    raise ValueError(f"protocol must be 'vinyals' or 'lake', got {protocol!r}")


def fake_uea(name: str = "BasicMotions", *, length=None, extract_path=None, seed: int = 0):
    """A UEA set in the real one's shape (:data:`UEA_SHAPES`): as :func:`load_uea` returns it.

    Series are z-normalised noise around a per-class mean, every time step real (mask 1).
    """
    del extract_path  # the real loader's download folder; nothing is downloaded here
    n_train, n_test, real_length, channels, classes = UEA_SHAPES[name]
    length = length or real_length
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, 1, channels))

    def split(n: int) -> Split:
        y = rng.permutation(np.arange(n) % classes).astype(np.int32)
        x = means[y] + rng.normal(size=(n, length, channels))
        mask = np.ones((n, length, 1))
        return Split(x=np.concatenate([x, mask], axis=-1).astype(np.float32), y=y)

    return UEADataset(
        name=name,
        train=split(n_train),
        test=split(n_test),
        class_names=tuple(f"class{c}" for c in range(classes)),
        channels=channels,
        length=length,
    )


def _fake_load_omniglot(data_dir=None, *, protocol="vinyals", image_size=28, **unused):
    return fake_omniglot(protocol, image_size)


def _fake_load(name: str, *, data_dir=None, cache_dir=None, download=True):
    if name.startswith("omniglot"):
        return fake_omniglot(name)
    if name.startswith("uea:"):
        return uea_few_shot(fake_uea(name[4:]))
    raise ValueError(f"no generated stand-in for dataset {name!r}")


class Patcher(contextlib.AbstractContextManager):
    """``monkeypatch.setattr`` outside pytest (``--fake-data``): undone on exit.

    Example:
      >>> import math
      >>> with Patcher() as patch:
      ...     patch.setattr(math, "pi", 3)
      ...     math.pi
      3
      >>> math.pi
      3.141592653589793
    """

    def __init__(self):
        self._undo = []

    def setattr(self, target, name: str, value) -> None:
        self._undo.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def __exit__(self, *exc) -> None:
        while self._undo:
            setattr(*self._undo.pop())


def use_fake_data(monkeypatch, *modules) -> None:
    """Replaces the Omniglot and UEA loaders with generated data, for one test (pytest's
    ``monkeypatch``) or one benchmark run (``--fake-data``: a :class:`Patcher`).

    ``metajax.datasets.load``, ``load_omniglot`` and ``load_uea`` are patched where the
    library defines them, and in each of ``modules`` (a benchmark's ``train``) that
    imported them by name.
    """
    fakes = {"load": _fake_load, "load_omniglot": _fake_load_omniglot, "load_uea": fake_uea}
    places = (metajax.datasets, metajax.datasets.omniglot, metajax.datasets.uea, *modules)
    for place in places:
        for name, fake in fakes.items():
            if name in vars(place) and (name != "load" or place is metajax.datasets):
                monkeypatch.setattr(place, name, fake)


__all__ = ["Patcher", "fake_omniglot", "fake_uea", "import_own", "use_fake_data"]
