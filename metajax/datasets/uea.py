"""UEA multivariate time-series classification sets, padded and masked for JAX.

The UEA archive (Bagnall et al. 2018) ships a train and a test split per dataset;
aeon (the ``metajax[timeseries]`` extra) carries BasicMotions and JapaneseVowels
offline and downloads the others.

Representation. JAX wants one array per split, but some sets (JapaneseVowels) hold
series of different lengths. Every series is therefore zero-padded at the end to a
common ``length`` and given one extra *mask channel*: ``x`` is ``[n, length,
channels + 1]``, ``x[..., :channels]`` the z-normalised values (zero on padding) and
``x[..., channels]`` 1.0 on real time steps and 0.0 on padding. Keeping the mask
inside ``x`` keeps every split a plain :class:`~metajax.core.episodes.Split` ``(x, y)``,
so the samplers, the trainer and ``vmap`` need no change; :func:`metajax.tapnet`
reads the mask so that padding does not change its output.

Normalisation is per channel with the mean and standard deviation of the training
split's real time steps only (test statistics never leak into the inputs).

Two protocols:

* the papers' (:meth:`UEADataset.paper_episode`): the official train split is the
  support set and the official test split the query set; all classes, with labels
  fixed to the class index (so per-class parameters, as in TapNet, are meaningful).
  :func:`class_sampler` draws training episodes from the train split with the same
  fixed labels.
* N-way k-shot (:meth:`UEADataset.pool`, :func:`uea_few_shot`): class pools
  ``[classes, examples, length, channels + 1]`` for :func:`~metajax.pool_sampler`.
  UEA classes are unbalanced (JapaneseVowels' test split has 24 to 88 series per
  class), while a pool needs the same count for every class: ``balance="cap"``
  (the default) keeps a seeded random subset of the smallest class's size of each
  class, ``balance="replace"`` tops each class up to the largest class's size by
  resampling its own series with replacement (so a duplicate can fall in both the
  support and the query set of one episode; prefer ``"cap"`` unless classes are tiny).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from metajax.core.episodes import Episode, EpisodeSampler, Split, check_episode_config, check_pool
from metajax.core.validation import check_int
from metajax.datasets.base import FewShotDataset, import_extra, split_classes

BALANCE = ("cap", "replace")


def pad_series(
    series: Sequence[np.ndarray] | np.ndarray, *, length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stacks series ``[channels, length_i]`` into ``[n, length, channels]`` and a mask.

    Trailing time steps that are NaN in every channel are padding (some UEA files pad
    that way); any other NaN is an error.

    Args:
      series: a list of ``[channels, length_i]`` arrays, or one ``[n, channels, length]``
        array (aeon's layouts).
      length: the padded length; the longest series' length by default.

    Returns:
      ``(values, mask)``: float64 ``[n, length, channels]`` with zeros on padding, and
      float64 ``[n, length]``, 1.0 on real steps.

    Example:
      >>> values, mask = pad_series([np.ones((2, 3)), np.ones((2, 5))])
      >>> values.shape, mask.sum(1).tolist()
      ((2, 5, 2), [3.0, 5.0])
    """
    if isinstance(series, np.ndarray) and series.ndim != 3:
        raise ValueError(
            f"series must be a list of [channels, length] arrays or one [n, channels, length] "
            f"array, got an array of shape {series.shape}"
        )
    if len(series) == 0:
        raise ValueError("series must hold at least one series, got none")
    arrays = []
    for i, s in enumerate(series):
        try:
            a = np.asarray(s, np.float64)
        except (TypeError, ValueError) as err:
            # Ragged rows or non-numbers: numpy's message would not say which series.
            raise ValueError(
                f"series[{i}] must be a numeric [channels, length] array with channels of "
                f"equal length ({err})"
            ) from err
        if a.ndim != 2:
            raise ValueError(f"series[{i}] must be [channels, length], got shape {a.shape}")
        if np.isinf(a).any():
            raise ValueError(f"series[{i}] has infinite values")
        arrays.append(a)
    channels = arrays[0].shape[0]
    for i, a in enumerate(arrays):
        if a.shape[0] != channels:
            raise ValueError(
                f"series[{i}] has {a.shape[0]} channels but series[0] has {channels}; "
                "every series of a dataset must have the same channels"
            )
    lengths = []
    for i, a in enumerate(arrays):
        valid = ~np.all(np.isnan(a), axis=0)
        n = int(valid.nonzero()[0].max()) + 1 if valid.any() else 0
        if n == 0:
            raise ValueError(f"series[{i}] has no time step with a value")
        if np.isnan(a[:, :n]).any():
            raise ValueError(f"series[{i}] has missing values (NaN) before its end")
        lengths.append(n)
    longest = max(lengths)
    if length is None:
        length = longest
    if not isinstance(length, int | np.integer) or isinstance(length, bool) or length < longest:
        raise ValueError(
            f"length must be an integer >= the longest series ({longest} steps), got {length!r}"
        )
    values = np.zeros((len(arrays), length, channels))
    mask = np.zeros((len(arrays), length))
    for i, (a, n) in enumerate(zip(arrays, lengths, strict=True)):
        values[i, :n] = a[:, :n].T
        mask[i, :n] = 1.0
    return values, mask


def channel_statistics(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over the real (unmasked) time steps.

    A constant channel gets a standard deviation of 1, so it normalises to zero
    rather than dividing by zero.
    """
    weight = mask[..., None]
    count = weight.sum((0, 1))
    mean = (values * weight).sum((0, 1)) / count
    var = (np.square(values - mean) * weight).sum((0, 1)) / count
    std = np.sqrt(var)
    return mean, np.where(std > 1e-12, std, 1.0)


@dataclasses.dataclass(frozen=True)
class UEADataset:
    """One UEA set, official splits, as masked arrays (see the module docstring).

    Attributes:
      name: the UEA name, e.g. ``"BasicMotions"``.
      train: the official train split; ``x`` float32 ``[n, length, channels + 1]``
        (last channel the mask), ``y`` int32 class indices.
      test: the official test split, normalised with the train split's statistics.
      class_names: a name per class index, sorted as strings.
      channels: variables per time step (without the mask channel).
      length: the padded length.
    """

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    channels: int
    length: int

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def split(self, split: str) -> Split:
        """``"train"`` or ``"test"``."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return self.train if split == "train" else self.test

    def paper_episode(self) -> Episode:
        """The papers' protocol: support = official train split, query = official test split."""
        return Episode(support=self.train, query=self.test)

    def pool(self, split: str, *, balance: str = "cap", seed: int = 0) -> np.ndarray:
        """The class pool ``[classes, examples, length, channels + 1]`` of ``split``.

        Args:
          split: ``"train"``, ``"test"`` or ``"all"`` (both official splits together).
          balance: ``"cap"`` or ``"replace"``, how unequal classes are evened out
            (module docstring).
          seed: the seed of the subsets or resamples.
        """
        if split == "all":
            x = np.concatenate([self.train.x, self.test.x])
            y = np.concatenate([self.train.y, self.test.y])
        else:
            x, y = self.split(split)
        return class_pool(x, y, classes=self.classes, balance=balance, seed=seed)


def class_pool(x, y, *, classes: int, balance: str = "cap", seed: int = 0) -> np.ndarray:
    """Groups examples by label into ``[classes, examples, *features]``, evening out counts.

    Example:
      >>> x, y = np.arange(5.0)[:, None], np.array([0, 0, 0, 1, 1])
      >>> class_pool(x, y, classes=2).shape, class_pool(x, y, classes=2, balance="replace").shape
      ((2, 2, 1), (2, 3, 1))
    """
    if balance not in BALANCE:
        raise ValueError(f"balance must be one of {BALANCE}, got {balance!r}")
    check_int("classes", classes, 1)
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be integer labels of shape [n], got {y.dtype}{y.shape}")
    if x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y disagree on n: x has shape {x.shape}, y has {y.shape[0]} labels")
    outside = np.unique(y[(y < 0) | (y >= classes)])
    if outside.size:
        # Such examples would otherwise be dropped without a word.
        raise ValueError(
            f"y must hold labels in [0, {classes - 1}] (classes={classes}), "
            f"got {outside[:5].tolist()}"
        )
    members = [np.flatnonzero(y == c) for c in range(classes)]
    empty = [c for c, m in enumerate(members) if len(m) == 0]
    if empty:
        raise ValueError(f"classes {empty} have no example; a pool needs every class")
    rng = np.random.default_rng(seed)
    if balance == "cap":
        count = min(len(m) for m in members)
        picks = [rng.permutation(m)[:count] for m in members]
    else:
        count = max(len(m) for m in members)
        picks = [
            np.concatenate([rng.permutation(m), rng.choice(m, count - len(m), replace=True)])
            for m in members
        ]
    return np.stack([x[p] for p in picks])


def load_uea(name: str, *, length: int | None = None, extract_path=None) -> UEADataset:
    """Loads a UEA multivariate set through aeon, padded, masked and z-normalised.

    Args:
      name: the UEA name (``"BasicMotions"``, ``"JapaneseVowels"``, ...). aeon ships a
        few offline and downloads the others into ``extract_path``.
      length: the padded length; the longest series of either split by default.
      extract_path: where aeon keeps downloaded sets (aeon's default if None).

    Raises:
      MissingExtraError: when aeon is not installed (one line naming the ``timeseries``
        extra; a ``ValueError`` and an ``ImportError``).

    Example:
      >>> ds = load_uea("BasicMotions")
      >>> ds.train.x.shape, ds.test.y.shape, ds.channels, ds.class_names[0]
      ((40, 100, 7), (40,), 6, 'badminton')
    """
    aeon_datasets = import_extra(
        "aeon.datasets", needed_by=f"dataset uea:{name}", package="aeon", extra="timeseries"
    )
    raw = {}
    for split in ("train", "test"):
        series, labels = aeon_datasets.load_classification(
            name, split=split, extract_path=extract_path
        )
        raw[split] = (list(series), np.asarray(labels).astype(str))
    class_names = tuple(str(c) for c in sorted(set(raw["train"][1]) | set(raw["test"][1])))
    index = {c: i for i, c in enumerate(class_names)}
    all_series = raw["train"][0] + raw["test"][0]
    values, mask = pad_series(all_series, length=length)
    n_train = len(raw["train"][0])
    mean, std = channel_statistics(values[:n_train], mask[:n_train])
    # Normalise, then re-zero the padding so that it carries no value.
    x = ((values - mean) / std) * mask[..., None]
    x = np.concatenate([x, mask[..., None]], axis=-1).astype(np.float32)

    def labels(split):
        return np.array([index[c] for c in raw[split][1]], np.int32)

    return UEADataset(
        name=name,
        train=Split(x=x[:n_train], y=labels("train")),
        test=Split(x=x[n_train:], y=labels("test")),
        class_names=class_names,
        channels=values.shape[-1],
        length=values.shape[1],
    )


def uea_few_shot(
    dataset: UEADataset, *, test_fraction: float = 1 / 3, balance: str = "cap", seed: int = 0
) -> FewShotDataset:
    """Disjoint meta-train / meta-test classes of a UEA set, for N-way k-shot episodes.

    Both official splits are merged (normalised with the official train split's
    statistics) and the classes are shuffled with ``seed`` into ``"train"`` and
    ``"test"`` pools, so meta-test classes are never seen in meta-training.

    Example:
      >>> fs = uea_few_shot(load_uea("JapaneseVowels"))
      >>> fs.pool("train").shape[0], fs.pool("test").shape[0], fs.pool("test").shape[2:]
      (6, 3, (29, 13))
    """
    if not 0 < test_fraction < 1:  # also refuses NaN
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    parts = split_classes(
        np.arange(dataset.classes), {"train": 1 - test_fraction, "test": test_fraction}, seed=seed
    )
    x = np.concatenate([dataset.train.x, dataset.test.x])
    y = np.concatenate([dataset.train.y, dataset.test.y])
    pools, names = {}, {}
    for split, ids in parts.items():
        keep = np.isin(y, ids)
        relabel = np.searchsorted(ids, y[keep])
        pools[split] = class_pool(x[keep], relabel, classes=len(ids), balance=balance, seed=seed)
        names[split] = tuple(dataset.class_names[i] for i in ids)
    return FewShotDataset(name=f"uea-{dataset.name}", pools=pools, class_names=names)


def class_sampler(pool, *, shots: int, queries: int) -> EpisodeSampler:
    """Episodes over *all* classes of ``pool`` with labels fixed to the class index.

    Each class's examples are shuffled; the first ``shots`` go to the support set and
    the next ``queries`` to the query set. This is the training counterpart of
    :meth:`UEADataset.paper_episode`: unlike :func:`~metajax.pool_sampler` it never
    permutes the labels, so a learner with per-class parameters (TapNet with
    ``classes``) sees class ``c`` as label ``c`` in every episode.

    Example:
      >>> sampler = class_sampler(np.zeros((4, 10, 100, 7)), shots=5, queries=5)
      >>> ep = sampler.sample(jax.random.key(0), sampler.data)
      >>> ep.support.x.shape, ep.query.y[:6].tolist()
      ((20, 100, 7), [0, 0, 0, 0, 0, 1])
    """
    classes, examples = check_pool(pool)
    check_episode_config(
        ways=classes, shots=shots, queries=queries, classes=classes, examples=examples
    )
    per_class = shots + queries

    def sample(key, data):
        keys = jax.random.split(key, classes)
        picks = jax.vmap(lambda k: jax.random.permutation(k, examples)[:per_class])(keys)
        x = data[jnp.arange(classes)[:, None], picks]
        features = x.shape[2:]
        labels = jnp.broadcast_to(jnp.arange(classes, dtype=jnp.int32)[:, None], picks.shape)
        return Episode(
            support=Split(
                x[:, :shots].reshape((classes * shots, *features)),
                labels[:, :shots].reshape(-1),
            ),
            query=Split(
                x[:, shots:].reshape((classes * queries, *features)),
                labels[:, shots:].reshape(-1),
            ),
        )

    return EpisodeSampler(sample=sample, data=jnp.asarray(pool))
