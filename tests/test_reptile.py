import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metajax import init_state, make_train_step, mlp
from metajax.core.losses import supervised_loss
from metajax.datasets import sample_sinusoid, sinusoid_sampler
from metajax.learners.optimization.inner_loop import adapt
from metajax.learners.optimization.reptile import reptile


def test_reptile_gradient_is_theta_minus_adapted():
    with jax.enable_x64(True):
        model = mlp(hidden=(8,), outputs=1)
        opt = optax.adam(1e-2, b1=0.0)
        learner = reptile(model, inner_optimizer=opt, inner_steps=4)
        episode = jax.tree.map(
            lambda a: a.astype(jnp.float64), sample_sinusoid(jax.random.key(0), shots=10, queries=5)
        )
        params = jax.tree.map(
            lambda a: a.astype(jnp.float64), learner.init(jax.random.key(1), episode)
        )
        grad, metrics = jax.grad(learner.loss, has_aux=True)(params, episode, jax.random.key(2))
        phi, _ = adapt(
            lambda p, s, k: supervised_loss(model.apply(p, s.x), s.y)[0],
            params,
            episode.support,
            jax.random.key(2),
            steps=4,
            optimizer=opt,
        )
        jax.tree.map(
            lambda g, t, p: np.testing.assert_allclose(g, t - p, rtol=1e-12), grad, params, phi
        )
        assert metrics["distance"] > 0


def test_reptile_learns_sinusoids_without_recompiling():
    learner = reptile(mlp(hidden=(40, 40), outputs=1), inner_steps=5, test_inner_steps=5)
    sampler = sinusoid_sampler(shots=10, queries=10)
    opt = optax.sgd(1.0)
    state = init_state(learner, opt, sampler, jax.random.key(0))
    step = make_train_step(learner, opt, sampler, tasks=5)
    mse = []
    for _ in range(300):
        state, metrics = step(state, sampler.data)
        mse.append(float(metrics["mse"]))
    assert step._cache_size() == 1
    assert np.mean(mse[-30:]) < np.mean(mse[:30])


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"inner_steps must be an integer >= 1"):
        reptile(mlp(outputs=1), inner_steps=0)


def test_reptile_gives_adapt_and_the_outer_loss_different_keys(monkeypatch):
    from metajax.core.losses import split_losses

    # The module, not the function of the same name that the package may re-export.
    module = importlib.import_module("metajax.learners.optimization.reptile")

    inner_keys = []

    def spying_split_losses(apply):
        task_loss, outer_loss = split_losses(apply)

        def task(p, split, key):
            jax.debug.callback(lambda k: inner_keys.append(np.asarray(k)), jax.random.key_data(key))
            return task_loss(p, split, key)

        def outer(p, split, key):
            value, metrics = outer_loss(p, split, key)
            return value, {**metrics, "key": jax.random.key_data(key)}

        return task, outer

    monkeypatch.setattr(module, "split_losses", spying_split_losses)
    learner = module.reptile(mlp(hidden=(8,), outputs=1), inner_steps=3)
    episode = sample_sinusoid(jax.random.key(0), shots=5, queries=5)
    params = learner.init(jax.random.key(1), episode)
    key = jax.random.key(2)
    _, metrics = learner.loss(params, episode, key)
    outer_key = np.asarray(metrics["key"])
    assert len(inner_keys) == 3
    assert not np.array_equal(outer_key, np.asarray(jax.random.key_data(key)))
    assert not any(np.array_equal(outer_key, k) for k in inner_keys)
    # The inner steps' keys are not the outer loss's either: both come from one split.
    assert not any(np.array_equal(k, np.asarray(jax.random.key_data(key))) for k in inner_keys)
