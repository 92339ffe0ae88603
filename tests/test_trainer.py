import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metajax import (
    Learner,
    NonFiniteError,
    evaluate,
    init_state,
    is_transductive,
    make_evaluator,
    make_train_step,
    maml,
    mean_ci95,
    meta_train,
    mlp,
    pool_sampler,
    protonet,
)
from metajax.datasets import load_digits, sinusoid_sampler
from metajax.training.trainer import episode_key


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
    assert int(state.step) == 2 and set(metrics) == {"loss", "accuracy", "objective", "finite"}
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
        # One task's gradient, compiled once and taken task by task (op-by-op dispatch
        # of the whole backward pass, four times, cost more than the compilation).
        task_grad = jax.jit(jax.grad(lambda p, e, k: learner.loss(p, e, k)[0]))
        grads = [task_grad(before, e, k) for e, k in zip(episodes, loss_keys, strict=True)]
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


def test_time_limit_stops_at_the_first_step_past_it_and_logs_it(digits_sampler):
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
    # Between log points: the stop does not wait for the next one (log_every may be large).
    assert int(state.step) == 1 and [r["step"] for r in history] == [1]
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
    targets = []
    for i in range(40):  # episode i comes from (key, i), whatever the batch
        sample_key, _ = episode_key(jax.random.key(0), i)
        targets.append(np.mean(np.square(sampler.sample(sample_key, ()).query.y)))
    assert result.mean["mse"] == pytest.approx(np.mean(targets), rel=1e-5)
    assert result.episodes == 40 and result.ci95["mse"] > 0


def test_evaluate_is_deterministic_by_key(digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    params = learner.init(
        jax.random.key(0), digits_sampler.sample(jax.random.key(1), digits_sampler.data)
    )
    a = evaluate(learner, params, digits_sampler, key=jax.random.key(3), episodes=30)
    b = evaluate(learner, params, digits_sampler, key=jax.random.key(3), episodes=30)
    assert a == b


def _reads_queries(read):
    """A learner whose logits for each query are ``read(query_x)``: no support needed."""

    def predict(params, support, query_x, key=None):
        return read(query_x.reshape(query_x.shape[0], -1)[:, :3] * params)

    return Learner(init=lambda key, episode: jnp.ones(()), loss=None, predict=predict)


@pytest.mark.parametrize(
    "read, expected",
    [
        (lambda q: q, False),  # each query alone
        (lambda q: q - q.mean(0), True),  # batch statistics over the query set
        (lambda q: jnp.cumsum(q, 0), True),  # a causal pass: only the last query sees the rest
        (lambda q: jnp.cumsum(q[::-1], 0)[::-1], True),  # and the reverse: only the first
        # -inf for a class absent from the support (TapNet) is compared as such.
        (lambda q: q.at[:, 0].set(-jnp.inf), False),
        (lambda q: (q - q.mean(0)).at[:, 0].set(-jnp.inf), True),
    ],
)
def test_is_transductive_detects_any_dependence_on_other_queries(digits_sampler, read, expected):
    learner = _reads_queries(read)
    key = jax.random.key(0)
    assert is_transductive(learner, jnp.ones(()), digits_sampler, key=key) is expected


def test_is_transductive_on_real_learners(digits_sampler):
    episode = digits_sampler.sample(jax.random.key(1), digits_sampler.data)
    plain = protonet(mlp(hidden=(16,)))
    params = plain.init(jax.random.key(0), episode)
    assert is_transductive(plain, params, digits_sampler, key=jax.random.key(2)) is False
    # MAML's adaptation reads the support set only; the query set is one batch of an MLP.
    adapted = maml(mlp(hidden=(16,), outputs=3), inner_lr=0.1, inner_steps=1)
    params = adapted.init(jax.random.key(0), episode)
    assert is_transductive(adapted, params, digits_sampler, key=jax.random.key(2)) is False


def test_is_transductive_arguments(digits_sampler):
    learner = _reads_queries(lambda q: q)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"rtol must be a number > 0.0 and finite, got 0"):
        is_transductive(learner, jnp.ones(()), digits_sampler, key=key, rtol=0)
    two = pool_sampler(load_digits().pool("train"), ways=2, shots=1, queries=1)
    with pytest.raises(
        ValueError, match=r"sampler: is_transductive needs .* at least 3 queries, got 2"
    ):
        is_transductive(learner, jnp.ones(()), two, key=key)


def test_bad_trainer_arguments(digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    with pytest.raises(ValueError, match=r"tasks \(meta-batch size\) must be an integer >= 1"):
        make_train_step(learner, optax.adam(1e-3), digits_sampler, tasks=0)
    with pytest.raises(ValueError, match=r"steps must be an integer >= 0"):
        meta_train(learner, digits_sampler, optax.adam(1e-3), steps=-1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"episodes must be an integer >= 2"):
        evaluate(learner, {}, digits_sampler, key=jax.random.key(0), episodes=1)


@pytest.mark.parametrize("kind", ["protonet", "maml"])
def test_chunked_tasks_give_the_vmapped_step(digits_sampler, kind):
    # Chunks of tasks differentiated one after another (the CPU's default) must give the
    # step that differentiates the whole meta-batch at once: loss, metrics and the
    # (second-order, for MAML) meta-gradient, in float64 with a remainder chunk.
    with jax.enable_x64(True):
        body = mlp(hidden=(16,), outputs=3 if kind == "maml" else None)
        learner = protonet(body) if kind == "protonet" else maml(body, inner_lr=0.1)
        opt = optax.sgd(0.1)
        state = init_state(learner, opt, digits_sampler, jax.random.key(3))
        state = state._replace(params=jax.tree.map(lambda a: a.astype(jnp.float64), state.params))
        runs = {}
        for chunk in (None, 1, 4, 6, 9, "auto"):
            copy = jax.tree.map(jnp.array, state)
            step = make_train_step(learner, opt, digits_sampler, tasks=6, task_chunk=chunk)
            runs[chunk] = step(copy, digits_sampler.data)
        whole, whole_metrics = runs.pop(None)
        for chunk, (chunked, metrics) in runs.items():
            jax.tree.map(
                lambda a, b, chunk=chunk: np.testing.assert_allclose(
                    a, b, rtol=1e-10 if a.dtype == np.float64 else 1e-6, err_msg=str(chunk)
                ),
                (whole.params, whole_metrics),
                (chunked.params, metrics),
            )
    for bad in (0, "all", 1.5):
        with pytest.raises(ValueError, match=r"task_chunk must be an integer >= 1, None or 'auto'"):
            make_train_step(learner, opt, digits_sampler, tasks=2, task_chunk=bad)


def _nan_objective(learner, *, metrics_loss=True):
    """``learner`` whose objective is NaN while its reported ``loss`` metric stays finite.

    This is Reptile's case, whose objective (half the squared parameter distance) is not
    the query loss it reports; with ``metrics_loss=False`` there is no ``loss`` metric.
    """

    def loss(params, episode, key):
        value, metrics = learner.loss(params, episode, key)
        if not metrics_loss:
            metrics = {k: v for k, v in metrics.items() if k != "loss"}
        return value * jnp.nan, metrics

    return learner._replace(loss=loss)


@pytest.mark.parametrize("metrics_loss", [True, False], ids=["finite-loss-metric", "no-loss"])
def test_non_finite_error_reports_the_objective_it_judged(digits_sampler, metrics_loss):
    learner = _nan_objective(protonet(mlp(hidden=(16,))), metrics_loss=metrics_loss)
    with pytest.raises(NonFiniteError) as err:
        meta_train(
            learner,
            digits_sampler,
            optax.adam(1e-3),
            steps=2,
            key=jax.random.key(0),
            log_every=2,
            progress=False,
            name="nanny",
        )
    message = str(err.value)
    assert "meta-training of nanny stopped at meta-step 1" in message
    assert "the objective is nan" in message and "finite but" not in message


def test_non_finite_error_says_when_the_objective_was_finite(digits_sampler):
    # A NaN gradient under a finite objective: the message gives the objective's value.
    base = protonet(mlp(hidden=(16,)))

    def loss(params, episode, key):
        value, metrics = base.loss(params, episode, key)
        # sqrt at 0: a finite value (0) whose derivative is infinite, times 0: NaN.
        return value + jnp.sqrt(0.0 * jax.tree.leaves(params)[0].sum()), metrics

    with pytest.raises(NonFiniteError) as err:
        meta_train(
            base._replace(loss=loss),
            digits_sampler,
            optax.adam(1e-3),
            steps=1,
            key=jax.random.key(0),
            progress=False,
        )
    assert "the objective (" in str(err.value) and "is finite but a gradient" in str(err.value)


class _Bar:
    """A stand-in for tqdm that records what the trainer asks of it."""

    events: list = []

    def __init__(self, *args, total=None, initial=0, **kwargs):
        self.n, self.total = initial, total
        _Bar.events = [("start", initial)]

    def update(self, n=1):
        self.n += n
        _Bar.events.append(("update", self.n))

    def set_postfix(self, values, **kwargs):
        _Bar.events.append(("postfix", self.n, dict(values)))

    def close(self):
        _Bar.events.append(("close", self.n))


def test_progress_bar_ticks_every_step_and_shows_logged_metrics(digits_sampler, monkeypatch):
    import metajax.training.trainer as trainer

    monkeypatch.setattr(trainer, "tqdm", _Bar)
    _, history = meta_train(
        protonet(mlp(hidden=(16,))),
        digits_sampler,
        optax.adam(1e-3),
        steps=5,
        key=jax.random.key(0),
        log_every=2,
    )
    ticks = [e[1] for e in _Bar.events if e[0] == "update"]
    assert ticks == [1, 2, 3, 4, 5]
    shown = [(e[1], e[2]) for e in _Bar.events if e[0] == "postfix"]
    assert [n for n, _ in shown] == [r["step"] for r in history] == [2, 4, 5]
    assert all(set(values) == {"loss", "accuracy"} for _, values in shown)
    assert shown[-1][1]["loss"] == f"{history[-1]['loss']:.4g}"


@pytest.mark.parametrize("batch", [1, 7, 16])
def test_evaluation_episodes_do_not_depend_on_the_batch(digits_sampler, batch):
    learner = protonet(mlp(hidden=(16,)))
    params = learner.init(
        jax.random.key(0), digits_sampler.sample(jax.random.key(1), digits_sampler.data)
    )
    kw = dict(key=jax.random.key(3), episodes=30)
    reference = evaluate(learner, params, digits_sampler, batch=50, **kw)
    result = evaluate(learner, params, digits_sampler, batch=batch, **kw)
    assert result.mean["accuracy"] == pytest.approx(reference.mean["accuracy"], abs=1e-6)
    assert result.ci95["accuracy"] == pytest.approx(reference.ci95["accuracy"], abs=1e-6)
    # And the evaluator compiled for a batch scores the same episodes as a fresh one.
    score = make_evaluator(learner, digits_sampler, episodes=30, batch=batch)
    assert score(params, kw["key"]).mean == pytest.approx(reference.mean, abs=1e-6)


def test_meta_train_returns_the_best_validated_parameters(tmp_path, digits_sampler):
    learner = protonet(mlp(hidden=(16,)))
    val = pool_sampler(load_digits().pool("test"), ways=3, shots=2, queries=3)
    kw = dict(
        steps=8,
        key=jax.random.key(0),
        tasks=2,
        log_every=2,
        progress=False,
        validation=(val, 2),
        validation_episodes=10,
    )
    result = meta_train(learner, digits_sampler, optax.adam(3e-2), **kw)
    state, history = result  # the two items every caller unpacks
    assert result.state is state and result.history is history and len(result) == 2
    scored = [(r["val_accuracy"], r["step"]) for r in history]
    value, step = max(scored)  # the last of equals, as the checkpoint manager keeps it
    best = result.best
    assert (best.step, best.metric, best.value) == (step, "val_accuracy", value)
    again = evaluate(
        learner, best.params, val, key=jax.random.fold_in(kw["key"], step), episodes=10
    )
    assert again.mean["accuracy"] == pytest.approx(value)
    # With checkpoints, the best one holds the same parameters, and a resumed run that
    # did not see the best step in this process restores them from it.
    directory = tmp_path / "ckpt"
    first = meta_train(learner, digits_sampler, optax.adam(3e-2), checkpoint_dir=directory, **kw)
    assert first.best.step == step
    resumed = meta_train(
        learner, digits_sampler, optax.adam(3e-2), checkpoint_dir=directory, resume=True, **kw
    )
    assert resumed.best.step == step and resumed.best.value == value
    for run in (first, resumed):
        jax.tree.map(np.testing.assert_array_equal, run.best.params, best.params)
    # Without validation there is no best.
    plain = meta_train(
        learner, digits_sampler, optax.adam(3e-2), steps=2, key=kw["key"], progress=False
    )
    assert plain.best is None and len(plain) == 2
