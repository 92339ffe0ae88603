"""Episodes: the support/query pytrees every learner consumes, and a pure sampler.

An episode is one few-shot task. Its ``support`` split is what a learner may adapt
to; its ``query`` split is what it is scored on. Labels are remapped to
``0..ways-1`` so that a learner never sees the global class index.

The sampler is a pure function of a PRNG key and a class-indexed pool
``[classes, examples, *features]``: jit it, vmap it over keys to get a batch of
tasks, and the same key always gives the same episode. Shapes depend only on the
static ``(ways, shots, queries)``, so a second call never recompiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metajax.core.validation import check_int

Array = jax.Array


class Split(NamedTuple):
    """One side of an episode.

    Attributes:
      x: inputs, ``[n, *features]``.
      y: targets, ``[n]`` integer labels in ``0..ways-1`` for classification, or
        ``[n, *outputs]`` floats for regression.
    """

    x: Array
    y: Array


class Episode(NamedTuple):
    """A few-shot task: a support split to adapt on and a query split to score."""

    support: Split
    query: Split


class EpisodeSampler(NamedTuple):
    """A pure episode source for the trainer.

    ``data`` is passed to ``sample`` as a traced jit argument rather than closed
    over, so a large pool is not baked into the compiled program as a constant.

    Attributes:
      sample: ``(key, data) -> Episode``, one task.
      data: a pytree of arrays (for example a class pool), or ``()``.
    """

    sample: Callable[[Array, Any], Episode]
    data: Any


def check_episode_config(*, ways: int, shots: int, queries: int, classes: int, examples: int):
    """Raises a ``ValueError`` naming the argument when an episode cannot be drawn."""
    for name, value in (("ways", ways), ("shots", shots), ("queries", queries)):
        check_int(name, value, 1)
    if ways > classes:
        raise ValueError(
            f"ways={ways} is larger than the {classes} classes in the pool; "
            f"allowed: 1 <= ways <= {classes}"
        )
    if shots + queries > examples:
        raise ValueError(
            f"shots + queries = {shots} + {queries} = {shots + queries} is larger than the "
            f"{examples} examples per class in the pool; allowed: shots + queries <= {examples}"
        )


def check_pool(pool) -> tuple[int, int]:
    """Checks that ``pool`` is ``[classes, examples, *features]``; returns its first two sizes."""
    shape = getattr(pool, "shape", None)
    if shape is None:
        raise ValueError(f"pool must be an array [classes, examples, *features], got {type(pool)}")
    if len(shape) < 2:
        raise ValueError(
            f"pool must have rank >= 2 ([classes, examples, *features]), got shape {tuple(shape)}"
        )
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"pool must hold at least one class and one example, got {tuple(shape)}")
    dtype = getattr(pool, "dtype", None)
    if dtype is None or not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, bool)):
        raise ValueError(f"pool must hold numbers, got dtype {dtype}")
    return int(shape[0]), int(shape[1])


def sample_episode(key: Array, pool: Array, *, ways: int, shots: int, queries: int) -> Episode:
    """Draws one N-way k-shot episode from a class-indexed pool.

    Classes are drawn without replacement and labelled by the order they were
    drawn in, so label ``i`` is a uniformly random class; within each class,
    ``shots + queries`` distinct examples are drawn, the first ``shots`` for the
    support set. Both splits are ordered by label (class-major).

    Args:
      key: a PRNG key; the episode is a deterministic function of it.
      pool: ``[classes, examples, *features]``.
      ways: classes per episode (N).
      shots: support examples per class (k).
      queries: query examples per class.

    Returns:
      An :class:`Episode` with support ``x`` of shape ``[ways * shots, *features]``
      and query ``x`` of shape ``[ways * queries, *features]``; ``y`` is int32.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> pool = jnp.zeros((10, 20, 28, 28, 1))
      >>> ep = sample_episode(jax.random.key(0), pool, ways=5, shots=1, queries=3)
      >>> ep.support.x.shape, ep.query.y.shape
      ((5, 28, 28, 1), (15,))
    """
    classes, examples = check_pool(pool)
    check_episode_config(
        ways=ways, shots=shots, queries=queries, classes=classes, examples=examples
    )
    class_key, example_key = jax.random.split(key)
    chosen = jax.random.permutation(class_key, classes)[:ways]
    per_class = shots + queries
    example_keys = jax.random.split(example_key, ways)
    picks = jax.vmap(lambda k: jax.random.permutation(k, examples)[:per_class])(example_keys)
    # Gather [ways, shots+queries, *features] without materialising the pool twice.
    x = pool[chosen[:, None], picks]
    labels = jnp.broadcast_to(jnp.arange(ways, dtype=jnp.int32)[:, None], (ways, per_class))
    features = x.shape[2:]
    support = Split(
        x=x[:, :shots].reshape((ways * shots, *features)),
        y=labels[:, :shots].reshape(ways * shots),
    )
    query = Split(
        x=x[:, shots:].reshape((ways * queries, *features)),
        y=labels[:, shots:].reshape(ways * queries),
    )
    return Episode(support=support, query=query)


def pool_sampler(pool, *, ways: int, shots: int, queries: int) -> EpisodeSampler:
    """An :class:`EpisodeSampler` over ``pool`` that validates the config once, eagerly.

    Example:
      >>> import numpy as np
      >>> sampler = pool_sampler(np.zeros((8, 20, 4)), ways=5, shots=1, queries=2)
      >>> sampler.sample(jax.random.key(1), sampler.data).query.x.shape
      (10, 4)
    """
    classes, examples = check_pool(pool)
    check_episode_config(
        ways=ways, shots=shots, queries=queries, classes=classes, examples=examples
    )

    def sample(key, data):
        return sample_episode(key, data, ways=ways, shots=shots, queries=queries)

    return EpisodeSampler(sample=sample, data=jnp.asarray(pool))


def sample_batch(sampler: EpisodeSampler, key: Array, tasks: int) -> Episode:
    """Draws ``tasks`` independent episodes, stacked on a leading task axis.

    Example:
      >>> import numpy as np
      >>> sampler = pool_sampler(np.zeros((8, 20, 4)), ways=5, shots=1, queries=2)
      >>> batch = sample_batch(sampler, jax.random.key(0), 3)
      >>> batch.support.x.shape, batch.query.y.shape
      ((3, 5, 4), (3, 10))
    """
    check_int("tasks", tasks, 1)
    keys = jax.random.split(key, tasks)
    return jax.vmap(sampler.sample, in_axes=(0, None))(keys, sampler.data)
