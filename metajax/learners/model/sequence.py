"""The label-offset sequence protocol of Santoro et al. (ICML 2016, §2 and Figure 1).

A recurrent meta-learner sees one episode as a sequence: every example of the task,
support and query alike, in a random order, each presented with the label of the
*previous* step. The label of step ``t`` is revealed only at step ``t + 1``, so the
model must hold ``(x_t, y_t)`` bindings in its state and predict ``y_t`` from ``x_t``
before it is told; the first presentation of a class can only be guessed. Classes
are bound to labels afresh in each episode (the shared sampler maps a random class
to each label), so the bindings cannot be memorised across episodes.

Accuracy is reported per *instance*: the ``k``-th presentation of a class within the
sequence (Santoro et al., Table 1: 1st, 2nd, 3rd, 4th, 5th and 10th instance).

Everything is built on the shared sampler's :class:`~metajax.core.episodes.Episode`
(``sample_episode`` / ``pool_sampler``); nothing here reads data of its own.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metajax.core.episodes import Episode, Split
from metajax.core.validation import check_int, check_key, check_label_values, check_split

Array = jax.Array


class Sequence(NamedTuple):
    """One episode as a label-offset sequence of ``T`` steps.

    Attributes:
      x: the inputs ``[T, *features]``, in presentation order.
      previous_label: ``[T, ways]``, ``one_hot(y[t - 1])``; all zeros at ``t = 0``.
      y: the labels ``[T]`` to predict at each step.
      instance: ``[T]`` int32, which presentation of its class step ``t`` is (1, 2, ...).
    """

    x: Array
    previous_label: Array
    y: Array
    instance: Array


def check_length(n: int, *, ways: int, instances: int) -> None:
    """Raises a ``ValueError`` unless an episode of ``n`` examples is ``ways * instances`` steps.

    Example:
      >>> check_length(10, ways=3, instances=4)  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: the episode holds n_support + n_query = 10 examples, but ways * instances = ...
    """
    if n != ways * instances:
        raise ValueError(
            f"the episode holds n_support + n_query = {n} examples, but ways * instances = "
            f"{ways} * {instances} = {ways * instances}; instances must be {n} / ways "
            f"(shots + queries for sample_episode) and ways the episode's number of classes"
        )


def offset_labels(y: Array, ways: int) -> Array:
    """``[T, ways]``: row ``t`` is ``one_hot(y[t - 1])``, row 0 is the null (all-zero) label.

    Example:
      >>> import jax.numpy as jnp
      >>> offset_labels(jnp.array([2, 0, 1]), 3).astype(int).tolist()
      [[0, 0, 0], [0, 0, 1], [1, 0, 0]]
    """
    check_int("ways", ways, 1)
    return _offset_labels(y, ways)


def _offset_labels(y: Array, ways: int) -> Array:
    one_hot = jax.nn.one_hot(y, ways, dtype=jnp.float32)
    return jnp.concatenate([jnp.zeros_like(one_hot[:1]), one_hot[:-1]])


def instance_numbers(y: Array, ways: int) -> Array:
    """``[T]`` int32: step ``t`` is the ``k``-th presentation of class ``y[t]`` (1-based).

    Example:
      >>> import jax.numpy as jnp
      >>> instance_numbers(jnp.array([1, 0, 1, 1, 0]), 2).tolist()
      [1, 1, 2, 3, 2]
    """
    check_int("ways", ways, 1)
    return _instance_numbers(y, ways)


def _instance_numbers(y: Array, ways: int) -> Array:
    one_hot = jax.nn.one_hot(y, ways, dtype=jnp.int32)
    return jnp.sum(jnp.cumsum(one_hot, axis=0) * one_hot, axis=-1)


def split_sequence(split: Split, key: Array | None, *, ways: int, name: str = "split") -> Sequence:
    """A label-offset :class:`Sequence` of one split, shuffled by ``key`` (kept in order if None).

    ``name`` is what error messages call the split (``"support"`` for a learner's).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax.core.episodes import Split
      >>> seq = split_sequence(Split(jnp.eye(4), jnp.array([0, 1, 0, 1])), None, ways=2)
      >>> seq.instance.tolist(), seq.previous_label[1].tolist()
      ([1, 1, 2, 2], [1.0, 0.0])
    """
    check_int("ways", ways, 1)
    # Rank 1 is enough: the recurrent learners flatten each step's input.
    check_split(name, split, min_rank=1)
    check_key("key", key, optional=True)
    check_label_values(f"{name}.y", split.y, ways)
    return _split_sequence(split, key, ways)


def _split_sequence(split: Split, key: Array | None, ways: int) -> Sequence:
    """:func:`split_sequence` unchecked, for callers that have checked its arguments."""
    x, y = split.x, split.y
    if key is not None:
        order = jax.random.permutation(key, y.shape[0])
        x, y = x[order], y[order]
    return Sequence(
        x=x, previous_label=_offset_labels(y, ways), y=y, instance=_instance_numbers(y, ways)
    )


def episode_sequence(episode: Episode, key: Array, *, ways: int, instances: int) -> Sequence:
    """Support and query of one episode as one shuffled label-offset sequence.

    The sequence has ``ways * instances`` steps, which must equal the episode's
    ``n_support + n_query`` (for ``sample_episode``, ``shots + queries = instances``).
    The support/query distinction is dropped: every step is scored, as in Santoro et
    al.'s protocol.

    Args:
      episode: one task from the shared sampler.
      key: shuffles the order of presentation.
      ways: classes per episode (the width of the label input).
      instances: presentations of each class in the sequence.

    Returns:
      A :class:`Sequence` of length ``ways * instances``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jnp.zeros((8, 12, 4))
      >>> ep = sample_episode(jax.random.key(0), pool, ways=3, shots=2, queries=3)
      >>> seq = episode_sequence(ep, jax.random.key(1), ways=3, instances=5)
      >>> seq.x.shape, seq.previous_label.shape, int(seq.instance.max())
      ((15, 4), (15, 3), 5)
    """
    check_int("ways", ways, 1)
    check_int("instances", instances, 1)
    check_split("support", episode.support, min_rank=1)
    check_split("query", episode.query, min_rank=1)
    check_key("key", key, optional=True)
    if episode.support.x.shape[1:] != episode.query.x.shape[1:]:
        raise ValueError(
            f"support.x features {episode.support.x.shape[1:]} differ from query.x's "
            f"{episode.query.x.shape[1:]}"
        )
    n = episode.support.x.shape[0] + episode.query.x.shape[0]
    check_length(n, ways=ways, instances=instances)
    check_label_values("support.y", episode.support.y, ways)
    check_label_values("query.y", episode.query.y, ways)
    return _episode_sequence(episode, key, ways)


def _episode_sequence(episode: Episode, key: Array | None, ways: int) -> Sequence:
    """:func:`episode_sequence` unchecked, for callers that have checked its arguments."""
    both = Split(
        x=jnp.concatenate([episode.support.x, episode.query.x]),
        y=jnp.concatenate([episode.support.y, episode.query.y]),
    )
    return _split_sequence(both, key, ways)
