import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from metajax import conv4, init_state, make_train_step, mlp, pool_sampler
from metajax.core.episodes import sample_episode
from metajax.datasets import sample_sinusoid, sinusoid_sampler
from metajax.learners.optimization.finetune import finetune
from metajax.learners.optimization.imaml import imaml
from metajax.learners.optimization.maml import fomaml, maml
from metajax.learners.optimization.metasgd import metasgd
from metajax.learners.optimization.reptile import reptile


def test_maml_meta_gradient_matches_finite_differences_to_second_order(f64):
    with jax.enable_x64(True):
        episode = jax.tree.map(
            lambda a: a.astype(jnp.float64), sample_sinusoid(jax.random.key(0), shots=5, queries=5)
        )
        learner = maml(mlp(hidden=(6,), outputs=1), inner_lr=0.05, inner_steps=2)
        params = f64(learner.init(jax.random.key(1), episode))
        check_grads(
            jax.jit(lambda p: learner.loss(p, episode, jax.random.key(2))[0]),
            (params,),
            order=2,
            modes=["rev"],
            eps=1e-5,
        )


def test_maml_conv4_classifier_meta_gradient_matches_finite_differences(f64):
    with jax.enable_x64(True):
        images = jax.random.normal(jax.random.key(3), (5, 4, 16, 16, 1), jnp.float64)
        episode = sample_episode(jax.random.key(4), images, ways=3, shots=1, queries=2)
        learner = maml(conv4(filters=3, outputs=3), inner_lr=0.4, inner_steps=1)
        params = f64(learner.init(jax.random.key(5), episode))
        check_grads(
            jax.jit(lambda p: learner.loss(p, episode, jax.random.key(6))[0]),
            (params,),
            order=1,
            modes=["rev"],
            eps=1e-6,
            atol=1e-5,
            rtol=1e-5,
        )


def test_second_order_terms_are_really_there(f64):
    with jax.enable_x64(True):
        episode = jax.tree.map(
            lambda a: a.astype(jnp.float64),
            sample_sinusoid(jax.random.key(7), shots=10, queries=10),
        )
        model = mlp(hidden=(8,), outputs=1)
        second, first = maml(model, inner_lr=0.05), fomaml(model, inner_lr=0.05)
        params = f64(second.init(jax.random.key(8), episode))
        g2, _ = jax.grad(second.loss, has_aux=True)(params, episode, jax.random.key(0))
        g1, _ = jax.grad(first.loss, has_aux=True)(params, episode, jax.random.key(0))
        diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), g2, g1)
        assert max(jax.tree.leaves(diff)) > 1e-6


def test_batch_meta_gradient_is_the_mean_of_per_task_gradients(f64):
    with jax.enable_x64(True):
        learner = maml(mlp(hidden=(8,), outputs=1), inner_lr=0.01)
        keys = jax.random.split(jax.random.key(9), 4)
        episodes = jax.vmap(lambda k: sample_sinusoid(k, shots=5, queries=5))(keys)
        episodes = jax.tree.map(lambda a: a.astype(jnp.float64), episodes)
        params = f64(learner.init(jax.random.key(10), jax.tree.map(lambda a: a[0], episodes)))
        loss_keys = jax.random.split(jax.random.key(11), 4)

        def batch(p):
            return jnp.mean(jax.vmap(learner.loss, in_axes=(None, 0, 0))(p, episodes, loss_keys)[0])

        batched = jax.jit(jax.grad(batch))(params)
        # One compiled per-task gradient, called on each task in turn.
        single = jax.jit(jax.grad(lambda p, episode, key: learner.loss(p, episode, key)[0]))
        tasks = [jax.tree.map(lambda a, i=i: a[i], episodes) for i in range(4)]
        singles = [single(params, task, key) for task, key in zip(tasks, loss_keys, strict=True)]
        mean = jax.tree.map(lambda *g: sum(g) / 4, *singles)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13), batched, mean
        )


def test_maml_step_does_not_recompile_and_learns_sinusoids():
    learner = maml(mlp(hidden=(40, 40), outputs=1), inner_lr=0.01)
    sampler = sinusoid_sampler(shots=10, queries=10)
    opt = optax.adam(1e-3)
    state = init_state(learner, opt, sampler, jax.random.key(0))
    step = make_train_step(learner, opt, sampler, tasks=25)
    losses = []
    for _ in range(300):
        state, metrics = step(state, sampler.data)
        losses.append(float(metrics["loss"]))
    assert step._cache_size() == 1
    assert np.mean(losses[-30:]) < 0.6 * np.mean(losses[:30])


def test_classification_predict_has_one_logit_per_way():
    pool = jax.random.normal(jax.random.key(12), (8, 5, 16, 16, 1))
    sampler = pool_sampler(pool, ways=4, shots=1, queries=2)
    episode = sampler.sample(jax.random.key(13), sampler.data)
    # An MLP on flattened images: the Conv-4 path has its own gradient check (above).
    learner = maml(mlp(hidden=(8,), outputs=4), test_inner_steps=2)
    params = learner.init(jax.random.key(14), episode)
    logits = jax.jit(learner.predict)(params, episode.support, episode.query.x, jax.random.key(0))
    assert logits.shape == (8, 4)
    _, metrics = jax.jit(learner.loss)(params, episode, jax.random.key(0))
    assert {"loss", "accuracy", "inner_loss_first", "inner_loss_last"} == set(metrics)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(inner_steps=0), r"inner_steps must be an integer >= 1"),
        (dict(test_inner_steps=0), r"test_inner_steps must be an integer >= 1"),
        (dict(inner_lr=0.0), r"inner_lr must be a number > 0"),
        (dict(inner_lr=-0.1), r"inner_lr must be a number > 0"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        maml(mlp(outputs=1), **kwargs)


HEAD_LEARNERS = {
    "maml": maml,
    "fomaml": fomaml,
    "imaml": imaml,
    "metasgd": metasgd,
    "reptile": reptile,
    "finetune": finetune,
}


def five_way_episode():
    pool = jax.random.normal(jax.random.key(15), (6, 3, 4))
    return sample_episode(jax.random.key(16), pool, ways=5, shots=1, queries=2)


def sinusoid():
    return sample_sinusoid(jax.random.key(17), shots=5, queries=5)


@pytest.mark.parametrize("name", sorted(HEAD_LEARNERS))
def test_a_head_narrower_than_the_ways_is_an_error_at_init_naming_the_learner(name):
    # Three logits for five classes: cross-entropy of labels 3 and 4 is NaN.
    learner = HEAD_LEARNERS[name](mlp(hidden=(8,), outputs=3))
    with pytest.raises(ValueError, match=rf"^{name}: .*3 outputs.*labels up to 4"):
        learner.init(jax.random.key(0), five_way_episode())


@pytest.mark.parametrize("name", sorted(HEAD_LEARNERS))
def test_a_backbone_without_a_head_is_an_error_at_init_naming_the_learner(name):
    # mlp() ends at its 8 hidden features, which would be trained on as logits.
    learner = HEAD_LEARNERS[name](mlp(hidden=(8,)))
    with pytest.raises(ValueError, match=rf"^{name}: .*no output head.*outputs="):
        learner.init(jax.random.key(0), five_way_episode())
    # Also where the labels are abstract (init under eval_shape or jit).
    with pytest.raises(ValueError, match=rf"^{name}: .*no output head"):
        jax.eval_shape(learner.init, jax.random.key(0), five_way_episode())


def test_the_issue_cases_conv4_without_a_head_and_with_three_outputs_on_five_ways():
    pool = jax.random.normal(jax.random.key(18), (6, 3, 8, 8, 1))
    episode = sample_episode(jax.random.key(19), pool, ways=5, shots=1, queries=1)
    for model, match in [
        (conv4(filters=2, blocks=2), r"^maml: .*no output head"),
        (conv4(filters=2, blocks=2, outputs=3), r"^maml: .*3 outputs.*labels up to 4"),
    ]:
        with pytest.raises(ValueError, match=match):
            maml(model).init(jax.random.key(0), episode)


@pytest.mark.parametrize("name", sorted(HEAD_LEARNERS))
def test_heads_that_fit_still_initialise(name):
    learner = HEAD_LEARNERS[name](mlp(hidden=(8,), outputs=5))
    assert jax.tree.leaves(learner.init(jax.random.key(0), five_way_episode()))
    regression = HEAD_LEARNERS[name](mlp(hidden=(8,), outputs=1))
    assert jax.tree.leaves(regression.init(jax.random.key(0), sinusoid()))
    wrong = HEAD_LEARNERS[name](mlp(hidden=(8,), outputs=2))
    with pytest.raises(ValueError, match=rf"^{name}: .*outputs \(2,\).*targets' \(1,\)"):
        wrong.init(jax.random.key(0), sinusoid())
