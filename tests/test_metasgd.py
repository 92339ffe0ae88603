import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from metajax import mlp
from metajax.core.losses import supervised_loss
from metajax.datasets import sample_sinusoid
from metajax.learners.optimization.metasgd import metasgd


def test_inner_step_is_elementwise_and_rates_are_meta_learned(f64):
    with jax.enable_x64(True):
        model = mlp(hidden=(6,), outputs=1)
        learner = metasgd(model)
        episode = f64(sample_sinusoid(jax.random.key(0), shots=5, queries=5))
        params = f64(learner.init(jax.random.key(1), episode))
        rates = jax.tree.leaves(params["inner_lr"])
        assert all(((r >= 0.005) & (r <= 0.1)).all() for r in rates)

        def task(p, split):
            return supervised_loss(model.apply(p, split.x), split.y)[0]

        grads = jax.grad(task)(params["model"], episode.support)
        phi = jax.tree.map(lambda t, a, g: t - a * g, params["model"], params["inner_lr"], grads)
        loss, _ = learner.loss(params, episode, jax.random.key(2))
        np.testing.assert_allclose(loss, task(phi, episode.query), rtol=1e-12)
        check_grads(
            jax.jit(lambda p: learner.loss(p, episode, jax.random.key(2))[0]),
            (params,),
            order=1,
            modes=["rev"],
            eps=1e-6,
        )
        meta = jax.grad(lambda p: learner.loss(p, episode, jax.random.key(2))[0])(params)
        assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(meta["inner_lr"])) > 0


def test_bad_lr_init():
    with pytest.raises(ValueError, match=r"lr_init must be \(low, high\)"):
        metasgd(mlp(outputs=1), lr_init=(0.1, 0.01))
