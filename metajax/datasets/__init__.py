"""Few-shot datasets: class pools ``[classes, examples, *features]``, disjoint class splits."""

from __future__ import annotations

from metajax.datasets.base import (
    CorruptDataError,
    DataNotFoundError,
    FewShotDataset,
    MissingExtraError,
    resolve_cache_dir,
    resolve_data_dir,
    split_classes,
)
from metajax.datasets.digits import load_digits
from metajax.datasets.omniglot import load_omniglot
from metajax.datasets.sinusoid import sample_sinusoid, sinusoid_sampler
from metajax.datasets.uea import (
    UEADataset,
    class_pool,
    class_sampler,
    load_uea,
    pad_series,
    uea_few_shot,
)

NAMES = ("digits", "omniglot", "omniglot-lake", "tfds:<name>", "uea:<name>")


def load(name: str, *, data_dir=None, cache_dir=None, download: bool = True) -> FewShotDataset:
    """Loads a classification dataset by name.

    Args:
      name: ``"digits"`` (scikit-learn, offline), ``"omniglot"`` (Vinyals split),
        ``"omniglot-lake"`` (background/evaluation alphabets), or ``"tfds:NAME"``
        for any prepared TFDS image-classification dataset, or ``"uea:NAME"`` for a
        UEA multivariate time-series set (``uea:BasicMotions``, ``uea:JapaneseVowels``;
        the ``timeseries`` extra) as class-disjoint N-way k-shot pools.
      data_dir: data root (defaults to ``$METAJAX_DATA_DIR``).
      cache_dir: where decoded arrays are cached.
      download: allow fetching missing files from their public home.

    Raises:
      MissingExtraError: ``tfds:`` without tensorflow-datasets or ``uea:`` without aeon
        (one line naming the extra to install; a ``ValueError`` and an ``ImportError``).
      ValueError: an unknown name.

    Example:
      >>> load("digits").splits
      ('train', 'test')
    """
    if name == "digits":
        return load_digits()
    if name in ("omniglot", "omniglot-vinyals", "omniglot-lake"):
        protocol = "lake" if name == "omniglot-lake" else "vinyals"
        return load_omniglot(data_dir, protocol=protocol, cache_dir=cache_dir, download=download)
    if name.startswith("tfds:") and len(name) > 5:
        from metajax.datasets.tfds import from_tfds

        return from_tfds(name[5:], data_dir=data_dir, download=download)
    if name.startswith("uea:") and len(name) > 4:
        return uea_few_shot(load_uea(name[4:]))
    raise ValueError(f"dataset must be one of {NAMES}, got {name!r}")


__all__ = [
    "NAMES",
    "UEADataset",
    "class_pool",
    "class_sampler",
    "load_uea",
    "pad_series",
    "uea_few_shot",
    "CorruptDataError",
    "DataNotFoundError",
    "FewShotDataset",
    "MissingExtraError",
    "load",
    "load_digits",
    "load_omniglot",
    "resolve_cache_dir",
    "resolve_data_dir",
    "sample_sinusoid",
    "sinusoid_sampler",
    "split_classes",
]
