import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metajax import (
    Learner,
    evaluate,
    init_state,
    make_train_step,
    mean_ci95,
    meta_train,
    mlp,
    pool_sampler,
    protonet,
)
from metajax.datasets import load_digits, sinusoid_sampler


@pytest.fixture(scope="module")
def digits_sampler():
    return pool_sampler(load_digits().pool("train"), ways=3, shots=2, queries=3)


def test_mean_ci95_matches_the_normal_formula():
    values = np.random.default_rng(0).random(600)
    mean, ci = mean_ci95(values)
    assert mean == pytest.approx(values.mean())
    assert ci == pytest.approx(1.96 * values.std(ddof=1) / np.sqrt(600))
    with pytest.raises(ValueError, match=r"at least 2 values"):
        mean_ci95([1.0])


def test_train_step_does_not_recompile(digits_sampler):
    learner, opt = protonet(mlp(hidden=(16,))), optax.adam(1e-3)
    state = init_state(learner, opt, digits_sampler, jax.random.key(0))
    step = make_train_step(learner, opt, digits_sampler, tasks=4)
    state, _ = step(state, digits_sampler.data)
    state, metrics = step(state, digits_sampler.data)
    assert step._cache_size() == 1
    assert int(state.step) == 2 and set(metrics) == {"loss", "accuracy", "finite"}
    assert float(metrics["finite"]) == 1.0


def test_batch_gradient_is_the_mean_of_per_task_gradients(digits_sampler):
    with jax.enable_x64(True):
        learner = protonet(mlp(hidden=(16,)))
        opt = optax.sgd(1.0)  # one SGD step at rate 1 exposes the gradient itself
        state = init_state(learner, opt, digits_sampler, jax.random.key(1))
        state = state._replace(params=jax.tree.map(lambda a: a.astype(jnp.float64), state.params))
        before = state.params
        # The episodes the step will draw, from the same key splits it makes.
        _, sample_key, loss_key = jax.random.split(state.key, 3)
        episodes = [
            digits_sampler.sample(k, digits_sampler.data) for k in jax.random.split(sample_key, 4)
        ]
        loss_keys = jax.random.split(loss_key, 4)
        grads = [
            jax.grad(lambda p, e=e, k=k: learner.loss(p, e, k)[0])(before)
            for e, k in zip(episodes, loss_keys, strict=True)
        ]
        mean_grad = jax.tree.map(lambda *g: sum(g) / len(g), *grads)
        before = jax.tree.map(np.asarray, before)  # the step donates its input buffers
        after, _ = make_train_step(learner, opt, digits_sampler, tasks=4)(
            state, digits_sampler.data
        )
        moved = jax.tree.map(lambda a, b: a - b, before, after.params)
        jax.tree.map(
            lambda m, g: np.testing.assert_allclose(m, g, rtol=1e-9, atol=1e-12), moved, mean_grad
        )


def test_meta_train_is_deterministic_and_logs_jsonl(tmp_path, digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    runs = []
    for name in ("a", "b"):
        state, history = meta_train(
            learner,
            digits_sampler,
            optax.adam(1e-3),
            steps=6,
            key=jax.random.key(7),
            tasks=2,
            metrics_path=tmp_path / f"{name}.jsonl",
            log_every=3,
            progress=False,
        )
        runs.append(state)
    jax.tree.map(np.testing.assert_array_equal, runs[0].params, runs[1].params)
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [3, 6] == [r["step"] for r in history]
    assert {"loss", "accuracy", "wall_s"} <= set(lines[0])


def test_validation_is_logged(digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    val = pool_sampler(load_digits().pool("test"), ways=3, shots=2, queries=3)
    _, history = meta_train(
        learner,
        digits_sampler,
        optax.adam(1e-3),
        steps=4,
        key=jax.random.key(0),
        log_every=2,
        progress=False,
        validation=(val, 2),
        validation_episodes=10,
    )
    assert all("val_accuracy" in r for r in history)
    with pytest.raises(ValueError, match=r"every must be a multiple of log_every"):
        meta_train(
            learner,
            digits_sampler,
            optax.adam(1e-3),
            steps=4,
            key=jax.random.key(0),
            log_every=2,
            progress=False,
            validation=(val, 3),
        )


def test_time_limit_stops_at_the_first_log_point_past_it(digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    state, history = meta_train(
        learner,
        digits_sampler,
        optax.adam(1e-3),
        steps=1000,
        key=jax.random.key(0),
        log_every=3,
        progress=False,
        time_limit=1e-6,
    )
    assert int(state.step) == 3 and [r["step"] for r in history] == [3]
    with pytest.raises(ValueError, match=r"time_limit must be > 0 seconds"):
        meta_train(
            learner, digits_sampler, optax.adam(1e-3), steps=1, key=jax.random.key(0), time_limit=0
        )


def test_evaluate_regression_reports_mse():
    # A learner that always predicts zero: its MSE is the mean square of the targets.
    zero = Learner(
        init=lambda key, ep: {},
        loss=None,
        predict=lambda params, support, qx, key: jnp.zeros((qx.shape[0], 1)),
    )
    sampler = sinusoid_sampler(shots=5, queries=10)
    result = evaluate(zero, {}, sampler, key=jax.random.key(0), episodes=40, batch=16)
    keys = jax.random.split(jax.random.key(0), 3)  # three chunks of 16 cover the 40 episodes
    targets = []
    for chunk_key in keys:
        for k in jax.random.split(chunk_key, 16):
            episode_key, _ = jax.random.split(k)
            targets.append(np.mean(np.square(sampler.sample(episode_key, ()).query.y)))
    assert result.mean["mse"] == pytest.approx(np.mean(targets[:40]), rel=1e-5)
    assert result.episodes == 40 and result.ci95["mse"] > 0


def test_evaluate_is_deterministic_by_key(digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    params = learner.init(
        jax.random.key(0), digits_sampler.sample(jax.random.key(1), digits_sampler.data)
    )
    a = evaluate(learner, params, digits_sampler, key=jax.random.key(3), episodes=30)
    b = evaluate(learner, params, digits_sampler, key=jax.random.key(3), episodes=30)
    assert a == b


def test_bad_trainer_arguments(digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    with pytest.raises(ValueError, match=r"tasks \(meta-batch size\) must be an integer >= 1"):
        make_train_step(learner, optax.adam(1e-3), digits_sampler, tasks=0)
    with pytest.raises(ValueError, match=r"steps must be an integer >= 0"):
        meta_train(learner, digits_sampler, optax.adam(1e-3), steps=-1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"episodes must be an integer >= 2"):
        evaluate(learner, {}, digits_sampler, key=jax.random.key(0), episodes=1)


def test_chunked_task_map_gives_the_vmapped_step(digits_sampler):
    with jax.enable_x64(True):
        learner, opt = protonet(mlp(hidden=(16,))), optax.sgd(0.1)
        state = init_state(learner, opt, digits_sampler, jax.random.key(3))
        state = state._replace(params=jax.tree.map(lambda a: a.astype(jnp.float64), state.params))
        copy = jax.tree.map(jnp.array, state)
        whole, _ = make_train_step(learner, opt, digits_sampler, tasks=6)(
            state, digits_sampler.data
        )
        chunked, _ = make_train_step(learner, opt, digits_sampler, tasks=6, task_chunk=4)(
            copy, digits_sampler.data
        )
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10), whole.params, chunked.params
        )
    with pytest.raises(ValueError, match=r"task_chunk must be an integer >= 1 or None"):
        make_train_step(learner, opt, digits_sampler, tasks=2, task_chunk=0)
