import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from metajax import conv4, mlp
from metajax.core.episodes import sample_episode
from metajax.datasets import sample_sinusoid
from metajax.learners.optimization.anil import anil


def test_meta_gradient_reaches_the_body_and_matches_finite_differences(f64):
    with jax.enable_x64(True):
        learner = anil(mlp(hidden=(6,)), outputs=1, inner_lr=0.05, inner_steps=2)
        episode = f64(sample_sinusoid(jax.random.key(0), shots=5, queries=5))
        params = f64(learner.init(jax.random.key(1), episode))
        check_grads(
            jax.jit(lambda p: learner.loss(p, episode, jax.random.key(2))[0]),
            (params,),
            order=2,
            modes=["rev"],
            eps=1e-5,
        )
        grads = jax.grad(lambda p: learner.loss(p, episode, jax.random.key(2))[0])(params)
        assert float(jnp.abs(grads["body"]["Dense_0"]["kernel"]).max()) > 0


def test_conv4_body_classifies_an_episode():
    images = jax.random.normal(jax.random.key(3), (6, 4, 28, 28, 1))
    episode = sample_episode(jax.random.key(4), images, ways=5, shots=1, queries=2)
    learner = anil(conv4(filters=8), outputs=5)
    params = learner.init(jax.random.key(5), episode)
    assert params["head"]["kernel"].shape == (8, 5)
    logits = jax.jit(learner.predict)(params, episode.support, episode.query.x, jax.random.key(6))
    assert logits.shape == (10, 5) and np.isfinite(logits).all()


def test_bad_outputs():
    with pytest.raises(ValueError, match=r"outputs must be an integer >= 1"):
        anil(mlp(), outputs=0)


def test_a_head_narrower_than_the_ways_is_an_error_at_init():
    pool = jax.random.normal(jax.random.key(3), (6, 3, 4))
    episode = sample_episode(jax.random.key(4), pool, ways=5, shots=1, queries=2)
    learner = anil(mlp(hidden=(8,)), outputs=3)
    with pytest.raises(ValueError, match=r"^anil: .*3 outputs.*labels up to 4"):
        learner.init(jax.random.key(5), episode)
    regression = anil(mlp(hidden=(8,)), outputs=2)
    with pytest.raises(ValueError, match=r"^anil: .*outputs \(2,\).*targets' \(1,\)"):
        regression.init(jax.random.key(5), sample_sinusoid(jax.random.key(0), shots=5, queries=5))
