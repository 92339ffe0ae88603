import jax
import numpy as np
import pytest

from metajax.datasets import sample_sinusoid, sinusoid_sampler


def test_sinusoid_tasks_follow_finn_2017():
    keys = jax.random.split(jax.random.key(0), 500)
    eps = jax.vmap(lambda k: sample_sinusoid(k, shots=5, queries=10))(keys)
    x = np.concatenate([eps.support.x, eps.query.x], 1)[..., 0]
    y = np.concatenate([eps.support.y, eps.query.y], 1)[..., 0]
    assert x.min() >= -5 and x.max() <= 5
    # Recover A and phi per task by least squares on y = a sin x + b cos x.
    for xi, yi in zip(x[:50], y[:50], strict=True):
        basis = np.stack([np.sin(xi), np.cos(xi)], 1)
        (a, b), *_ = np.linalg.lstsq(basis, yi, rcond=None)
        amplitude, phase = np.hypot(a, b), np.arctan2(-b, a)
        assert 0.1 - 1e-4 <= amplitude <= 5 + 1e-4
        assert -1e-4 <= phase <= np.pi + 1e-4
        np.testing.assert_allclose(basis @ [a, b], yi, atol=1e-4)


def test_sampler_is_deterministic_and_validates():
    sampler = sinusoid_sampler(shots=10, queries=10)
    a = sampler.sample(jax.random.key(1), sampler.data)
    b = sampler.sample(jax.random.key(1), sampler.data)
    np.testing.assert_array_equal(a.query.y, b.query.y)
    with pytest.raises(ValueError, match=r"shots must be an integer >= 1"):
        sinusoid_sampler(shots=0, queries=10)
    with pytest.raises(ValueError, match=r"amplitude must be \(low, high\)"):
        sinusoid_sampler(shots=5, queries=5, amplitude=(5.0, 0.1))
