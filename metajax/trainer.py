"""The one meta-training loop and the one evaluation, shared by every learner.

A meta-step samples a batch of tasks, vmaps the learner's one-task ``loss`` over
them, averages, differentiates and applies an optax update, all inside one jitted
function. Sampling happens inside the jit from the sampler's ``data`` (passed as
an argument, so a large pool is not a compile-time constant). The Python loop is
over meta-steps only; never over tasks.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from metajax.episodes import EpisodeSampler
from metajax.learner import Learner

Array = jax.Array


class TrainState(NamedTuple):
    """Everything a meta-training run carries from one meta-step to the next."""

    step: Array
    params: Any
    opt_state: Any
    key: Array


class Evaluation(NamedTuple):
    """Per-metric mean and 95% confidence half-width over ``episodes`` test tasks."""

    mean: dict[str, float]
    ci95: dict[str, float]
    episodes: int


def mean_ci95(values) -> tuple[float, float]:
    """Mean and the half-width of its normal 95% confidence interval (1.96 standard errors)."""
    values = np.asarray(values, np.float64)
    if values.size < 2:
        raise ValueError(f"need at least 2 values for a confidence interval, got {values.size}")
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(values.size))


def init_state(
    learner: Learner,
    optimizer: optax.GradientTransformation,
    sampler: EpisodeSampler,
    key: Array,
    params: Any = None,
) -> TrainState:
    """A fresh :class:`TrainState`; ``params`` default to ``learner.init`` on a sampled episode."""
    init_key, episode_key, key = jax.random.split(key, 3)
    if params is None:
        episode = jax.jit(sampler.sample)(episode_key, sampler.data)
        params = learner.init(init_key, episode)
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params), key=key
    )


def make_train_step(
    learner: Learner,
    optimizer: optax.GradientTransformation,
    sampler: EpisodeSampler,
    *,
    tasks: int,
    task_chunk: int | None = None,
) -> Callable[[TrainState, Any], tuple[TrainState, dict[str, Array]]]:
    """The jitted meta-step ``(state, data) -> (state, metrics)`` over ``tasks`` tasks.

    Args:
      learner: what to train.
      optimizer: the outer optimizer.
      sampler: the meta-training episodes.
      tasks: tasks per meta-step (the meta-batch).
      task_chunk: ``None`` vmaps all tasks at once; an integer runs chunks of that
        many vmapped tasks one after another (``jax.lax.map``), which bounds the
        memory of the activations kept for the backward pass at some cost in speed.

    The state's buffers are donated: do not reuse a state after passing it in.
    """
    if not isinstance(tasks, int) or tasks < 1:
        raise ValueError(f"tasks (meta-batch size) must be an integer >= 1, got {tasks!r}")
    if task_chunk is not None and (not isinstance(task_chunk, int) or task_chunk < 1):
        raise ValueError(f"task_chunk must be None or an integer >= 1, got {task_chunk!r}")

    def batch_loss(params, episodes, keys):
        if task_chunk is None:
            losses, metrics = jax.vmap(learner.loss, in_axes=(None, 0, 0))(params, episodes, keys)
        else:
            losses, metrics = jax.lax.map(
                lambda task: learner.loss(params, *task), (episodes, keys), batch_size=task_chunk
            )
        return losses.mean(), jax.tree.map(jnp.mean, metrics)

    def step(state: TrainState, data):
        key, sample_key, loss_key = jax.random.split(state.key, 3)
        sample_keys = jax.random.split(sample_key, tasks)
        episodes = jax.vmap(sampler.sample, in_axes=(0, None))(sample_keys, data)
        (_, metrics), grads = jax.value_and_grad(batch_loss, has_aux=True)(
            state.params, episodes, jax.random.split(loss_key, tasks)
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state, key), metrics

    return jax.jit(step, donate_argnums=0)


def make_eval_step(learner: Learner, sampler: EpisodeSampler, *, tasks: int):
    """The jitted ``(params, key, data) -> per-task metric arrays`` over ``tasks`` test tasks.

    Classification tasks (integer query labels) report accuracy; regression tasks
    report the mean squared error of ``predict`` against the query targets.
    """

    def one(params, key, data):
        episode_key, predict_key = jax.random.split(key)
        episode = sampler.sample(episode_key, data)
        outputs = learner.predict(params, episode.support, episode.query.x, predict_key)
        if jnp.issubdtype(episode.query.y.dtype, jnp.integer):
            return {"accuracy": jnp.mean(jnp.argmax(outputs, -1) == episode.query.y)}
        return {"mse": jnp.mean(jnp.square(outputs - episode.query.y))}

    def step(params, key, data):
        keys = jax.random.split(key, tasks)
        return jax.vmap(one, in_axes=(None, 0, None))(params, keys, data)

    return jax.jit(step)


def make_evaluator(
    learner: Learner, sampler: EpisodeSampler, *, episodes: int = 600, batch: int = 50
) -> Callable[[Any, Array], Evaluation]:
    """``(params, key) -> Evaluation`` over ``episodes`` test tasks, compiled once.

    Use this rather than :func:`evaluate` to score repeatedly (e.g. validation
    during training) without recompiling.
    """
    if not isinstance(episodes, int) or episodes < 2:
        raise ValueError(f"episodes must be an integer >= 2, got {episodes!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    batch = min(batch, episodes)
    step = make_eval_step(learner, sampler, tasks=batch)

    def run(params, key) -> Evaluation:
        chunks = [
            jax.device_get(step(params, chunk_key, sampler.data))
            for chunk_key in jax.random.split(key, -(-episodes // batch))
        ]
        values = {k: np.concatenate([c[k] for c in chunks])[:episodes] for k in chunks[0]}
        stats = {k: mean_ci95(v) for k, v in values.items()}
        return Evaluation(
            mean={k: m for k, (m, _) in stats.items()},
            ci95={k: c for k, (_, c) in stats.items()},
            episodes=episodes,
        )

    return run


def evaluate(
    learner: Learner,
    params: Any,
    sampler: EpisodeSampler,
    *,
    key: Array,
    episodes: int = 600,
    batch: int = 50,
) -> Evaluation:
    """Mean and 95% CI of the test metric over ``episodes`` independent test tasks.

    Args:
      learner: the learner whose ``predict`` is scored.
      params: its meta-parameters.
      sampler: meta-test episodes (classes never seen in meta-training).
      key: the PRNG key; the same key gives the same episodes.
      episodes: test tasks; 600 or more is the literature's convention.
      batch: tasks per jitted call (memory versus overhead).

    Example:
      >>> import jax, numpy as np
      >>> from metajax import protonet, mlp, pool_sampler, evaluate
      >>> sampler = pool_sampler(np.random.rand(6, 10, 4), ways=3, shots=1, queries=2)
      >>> learner = protonet(mlp(hidden=(8,)))
      >>> params = learner.init(jax.random.key(0), sampler.sample(jax.random.key(1), sampler.data))
      >>> result = evaluate(learner, params, sampler, key=jax.random.key(2), episodes=10, batch=5)
      >>> sorted(result.mean), result.episodes
      (['accuracy'], 10)
    """
    return make_evaluator(learner, sampler, episodes=episodes, batch=batch)(params, key)


def meta_train(
    learner: Learner,
    sampler: EpisodeSampler,
    optimizer: optax.GradientTransformation,
    *,
    steps: int,
    key: Array,
    tasks: int = 1,
    params: Any = None,
    metrics_path: str | os.PathLike | None = None,
    log_every: int = 50,
    progress: bool = True,
    validation: tuple[EpisodeSampler, int] | None = None,
    validation_episodes: int = 200,
    time_limit: float | None = None,
) -> tuple[TrainState, list[dict[str, float]]]:
    """Meta-trains ``learner`` for ``steps`` meta-steps of ``tasks`` tasks each.

    Args:
      learner: any :class:`~metajax.learner.Learner`.
      sampler: meta-training episodes.
      optimizer: the outer (meta) optimizer.
      steps: number of meta-steps.
      key: PRNG key; the run is a deterministic function of it.
      tasks: tasks per meta-step (the meta-batch), vmapped.
      params: initial meta-parameters; ``learner.init`` on a sampled episode if None.
      metrics_path: a JSONL file that gets one line of averaged metrics every
        ``log_every`` steps (appended, so resumed runs extend it).
      log_every: meta-steps per logged line and progress-bar refresh.
      progress: show a tqdm progress bar with the running loss and accuracy.
      validation: ``(sampler, every)``: evaluate on meta-validation episodes every
        ``every`` meta-steps and log them with a ``val_`` prefix.
      validation_episodes: episodes per validation pass.
      time_limit: seconds of training after which to stop early, at the first logged
        step past it (a budgeted run); ``state.step`` says how many steps ran.

    Returns:
      The final :class:`TrainState` and the list of logged metric dicts.

    Example:
      >>> import jax, numpy as np, optax
      >>> from metajax import protonet, mlp, pool_sampler, meta_train
      >>> sampler = pool_sampler(np.random.rand(6, 10, 4), ways=3, shots=1, queries=2)
      >>> state, history = meta_train(protonet(mlp(hidden=(8,))), sampler, optax.adam(1e-3),
      ...                             steps=4, key=jax.random.key(0), log_every=2, progress=False)
      >>> int(state.step), len(history)
      (4, 2)
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not isinstance(log_every, int) or log_every < 1:
        raise ValueError(f"log_every must be an integer >= 1, got {log_every!r}")
    if validation is not None and (
        not isinstance(validation[1], int) or validation[1] < 1 or validation[1] % log_every
    ):
        raise ValueError(
            f"validation every must be a multiple of log_every={log_every}, got {validation[1]!r}"
        )
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds or None, got {time_limit!r}")
    state = init_state(learner, optimizer, sampler, key, params)
    step_fn = make_train_step(learner, optimizer, sampler, tasks=tasks)
    history: list[dict[str, float]] = []
    if metrics_path is not None:
        Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    validate = None
    if validation is not None:
        validate = make_evaluator(learner, validation[0], episodes=validation_episodes)
    pending: list[dict[str, Array]] = []
    start = time.perf_counter()
    bar = tqdm(total=steps, disable=not progress, dynamic_ncols=True, desc="meta-train")
    for i in range(1, steps + 1):
        state, metrics = step_fn(state, sampler.data)
        pending.append(metrics)
        if i % log_every == 0 or i == steps:
            record = {"step": i, "wall_s": round(time.perf_counter() - start, 3)}
            fetched = jax.device_get(pending)
            record.update({k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]})
            pending = []
            if validate is not None and (i % validation[1] == 0 or i == steps):
                val = validate(state.params, jax.random.fold_in(key, i))
                record.update({f"val_{k}": v for k, v in val.mean.items()})
            history.append(record)
            if metrics_path is not None:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            bar.set_postfix(
                {k: f"{v:.4g}" for k, v in record.items() if k not in ("step", "wall_s")}
            )
            bar.update(i - bar.n)
            if time_limit is not None and time.perf_counter() - start >= time_limit:
                break
    bar.close()
    return state, history
