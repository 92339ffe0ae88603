"""The sinusoid regression family of Finn et al. 2017, §5.1.

A task is ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5]``, phase
``phi ~ U[0, pi]`` and inputs ``x ~ U[-5, 5]``. There is no pool: every key is a
new function, so the family is an :class:`~metajax.core.episodes.EpisodeSampler` with
empty data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metajax.core.episodes import Episode, EpisodeSampler, Split
from metajax.core.validation import check_int

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, float(jnp.pi))
X_RANGE = (-5.0, 5.0)


def sample_sinusoid(
    key: jax.Array,
    *,
    shots: int,
    queries: int,
    amplitude: tuple[float, float] = AMPLITUDE,
    phase: tuple[float, float] = PHASE,
    x_range: tuple[float, float] = X_RANGE,
) -> Episode:
    """One sinusoid task: ``shots`` support and ``queries`` query points, ``x``, ``y`` ``[n, 1]``.

    Example:
      >>> ep = sample_sinusoid(jax.random.key(0), shots=5, queries=10)
      >>> ep.support.x.shape, ep.query.y.shape
      ((5, 1), (10, 1))
    """
    check_int("shots", shots, 1)
    check_int("queries", queries, 1)
    for name, bounds in (("amplitude", amplitude), ("phase", phase), ("x_range", x_range)):
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            low = high = float("nan")  # reported below with the value as given
        if not low <= high:  # also refuses NaN bounds
            raise ValueError(f"{name} must be (low, high) with low <= high, got {bounds!r}")
    a_key, p_key, x_key = jax.random.split(key, 3)
    a = jax.random.uniform(a_key, (), minval=amplitude[0], maxval=amplitude[1])
    p = jax.random.uniform(p_key, (), minval=phase[0], maxval=phase[1])
    x = jax.random.uniform(x_key, (shots + queries, 1), minval=x_range[0], maxval=x_range[1])
    y = a * jnp.sin(x - p)
    return Episode(support=Split(x[:shots], y[:shots]), query=Split(x[shots:], y[shots:]))


def sinusoid_sampler(*, shots: int, queries: int, **ranges) -> EpisodeSampler:
    """An :class:`EpisodeSampler` of sinusoid tasks; ``ranges`` as in :func:`sample_sinusoid`.

    Example:
      >>> sampler = sinusoid_sampler(shots=10, queries=5)
      >>> episode = sampler.sample(jax.random.key(0), sampler.data)
      >>> episode.support.x.shape, episode.query.y.shape
      ((10, 1), (5, 1))
    """
    sample_sinusoid(jax.random.key(0), shots=shots, queries=queries, **ranges)  # validates eagerly

    def sample(key, data):
        del data
        return sample_sinusoid(key, shots=shots, queries=queries, **ranges)

    return EpisodeSampler(sample=sample, data=())
