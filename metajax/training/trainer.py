"""The one meta-training loop and the one evaluation, shared by every learner.

A meta-step samples a batch of tasks, vmaps the learner's one-task ``loss`` over
them, averages, differentiates and applies an optax update, all inside one jitted
function. Sampling happens inside the jit from the sampler's ``data`` (passed as
an argument, so a large pool is not a compile-time constant). The Python loop is
over meta-steps only; never over tasks.
"""

from __future__ import annotations

import inspect
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
from jax.sharding import Mesh
from tqdm.auto import tqdm

from metajax.core.episodes import EpisodeSampler
from metajax.core.learner import Learner
from metajax.core.tracing import traces_per_task_weights
from metajax.core.validation import check_float, check_int, check_key, check_optimizer
from metajax.core.xla import compiler_options
from metajax.training.checkpoint import checkpoint_manager, restore_state, save_state, write_atomic
from metajax.training.distributed import check_tasks, replicate, replicated, task_sharded

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
    """Mean and the half-width of its normal 95% confidence interval (1.96 standard errors).

    Example:
      >>> mean, ci = mean_ci95([0.5, 0.7, 0.6, 0.6])
      >>> round(mean, 3), round(ci, 3)
      (0.6, 0.08)
    """
    values = np.asarray(values, np.float64)
    if values.size < 2:
        raise ValueError(f"need at least 2 values for a confidence interval, got {values.size}")
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(values.size))


def check_sampler(name: str, sampler) -> None:
    """Raises a ``ValueError`` unless ``sampler`` is an :class:`EpisodeSampler`-like pair."""
    if not callable(getattr(sampler, "sample", None)) or not hasattr(sampler, "data"):
        raise ValueError(
            f"{name} must be an EpisodeSampler (sample, data), e.g. from pool_sampler, "
            f"got {type(sampler).__name__}"
        )


def check_learner(learner, needs: tuple[str, ...] = ("init", "loss", "predict")) -> None:
    """Raises a ``ValueError`` unless ``learner`` has the callables ``needs``."""
    missing = [f for f in needs if not callable(getattr(learner, f, None))]
    if missing:
        raise ValueError(
            f"learner must be a Learner with a callable {', '.join(missing)}, e.g. "
            f"protonet(...), got {type(learner).__name__}"
        )


def init_state(
    learner: Learner,
    optimizer: optax.GradientTransformation,
    sampler: EpisodeSampler,
    key: Array,
    params: Any = None,
) -> TrainState:
    """A fresh :class:`TrainState`; ``params`` default to ``learner.init`` on a sampled episode.

    Example:
      >>> import jax, numpy as np, optax
      >>> from metajax import mlp, pool_sampler, protonet
      >>> sampler = pool_sampler(np.random.rand(6, 4, 3), ways=2, shots=1, queries=2)
      >>> state = init_state(protonet(mlp(hidden=(8,))), optax.adam(1e-3), sampler,
      ...                    jax.random.key(0))
      >>> int(state.step), state.key.shape
      (0, ())
    """
    check_learner(learner)
    check_optimizer("optimizer", optimizer, optional=False)
    check_sampler("sampler", sampler)
    check_key("key", key)
    init_key, episode_key, key = jax.random.split(key, 3)
    if params is None:
        episode = jax.jit(sampler.sample)(episode_key, sampler.data)
        params = learner.init(init_key, episode)
    # One program, not one per state leaf's shape (an eager optax init dispatches each).
    opt_state = jax.jit(optimizer.init)(params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, key=key)


def make_train_step(
    learner: Learner,
    optimizer: optax.GradientTransformation,
    sampler: EpisodeSampler,
    *,
    tasks: int,
    task_chunk: int | str | None = "auto",
    mesh: Mesh | None = None,
) -> Callable[[TrainState, Any], tuple[TrainState, dict[str, Array]]]:
    """The jitted meta-step ``(state, data) -> (state, metrics)`` over ``tasks`` tasks.

    Args:
      learner: what to train.
      optimizer: the outer optimizer.
      sampler: the meta-training episodes.
      tasks: tasks per meta-step (the meta-batch).
      task_chunk: how many tasks are vmapped and differentiated together. ``None``
        takes all of them at once; an integer ``k`` runs chunks of ``k`` tasks one
        after another in a ``lax.scan`` and sums their gradients, so that only one
        chunk's activations are alive (memory bounded by ``k``, not ``tasks``). With a
        mesh, each chunk takes ``k`` tasks from every device's share. ``"auto"`` (the
        default) is ``1`` on the CPU for learners that adapt weights per task (MAML
        and its kin, see :func:`~metajax.core.tracing.per_task_weights`): one task
        at a time is there both the fastest and the smallest
        (``benchmarks/maml_speed/README.md``: second-order MAML at meta-batch 32 takes
        3.0 s and 1.0 GB per step instead of 5.6 s and 5.7 GB). It is ``None``
        otherwise: on accelerators, which want the whole batch at once, and for
        shared weights on the CPU, whose convolutions XLA:CPU runs some 30x slower
        inside a loop than vmapped.
      mesh: a :func:`~metajax.training.distributed.task_mesh`: the tasks are split across its
        devices (data parallel, parameters replicated) and ``tasks`` must be a
        multiple of its size. Place the state and data on it with
        :func:`~metajax.training.distributed.replicate`. ``None`` runs on the default device.

    The metrics hold the task means of the learner's metrics, ``objective``: the task
    mean of the loss that was differentiated (the learner's ``loss`` value, which
    need not be its ``loss`` metric: Reptile's is a parameter distance), and
    ``finite``: 1.0 when the objective, every gradient entry and every updated
    parameter were finite at this step, else 0.0. :func:`meta_train` logs neither
    of the last two.
    The state's buffers are donated: do not reuse a state after passing it in.

    Example:
      >>> import jax, numpy as np, optax
      >>> from metajax import mlp, pool_sampler, protonet, task_mesh, replicate
      >>> sampler = pool_sampler(np.random.rand(6, 4, 3), ways=2, shots=1, queries=2)
      >>> learner, optimizer = protonet(mlp(hidden=(8,))), optax.adam(1e-3)
      >>> mesh = task_mesh()  # every device; tasks must be a multiple of mesh.size
      >>> state = replicate(init_state(learner, optimizer, sampler, jax.random.key(0)), mesh)
      >>> step = make_train_step(learner, optimizer, sampler, tasks=4 * mesh.size, mesh=mesh)
      >>> state, metrics = step(state, replicate(sampler.data, mesh))
      >>> int(state.step), sorted(metrics)
      (1, ['accuracy', 'finite', 'loss', 'objective'])
    """
    check_learner(learner)
    check_optimizer("optimizer", optimizer, optional=False)
    check_sampler("sampler", sampler)
    check_int("tasks (meta-batch size)", tasks, 1)
    if task_chunk is not None and task_chunk != "auto":
        check_int("task_chunk", task_chunk, 1, why=", None or 'auto'")
    devices = 1
    if mesh is not None:
        check_tasks(tasks, mesh)
        devices = mesh.size

    def chunk_loss(params, episodes, keys):
        losses, metrics = jax.vmap(learner.loss, in_axes=(None, 0, 0))(params, episodes, keys)
        return losses.sum(), metrics

    chunk_grad = jax.value_and_grad(chunk_loss, has_aux=True)

    def split_tasks(keys):
        if mesh is None:
            return keys
        return jax.lax.with_sharding_constraint(keys, task_sharded(mesh))

    def loss_and_grads(params, episodes, keys):
        """The task mean of the loss, of its gradient and of the metrics.

        Chunks of ``chunk`` tasks run one after another in a scan, each differentiated
        on its own and summed into the gradient, so only one chunk's activations are
        alive at a time (``jax.lax.map`` under one ``grad`` would keep every chunk's).
        A chunk takes tasks from every device's slice, so the tasks stay where they are.
        """
        per_device = tasks // devices
        chunk = resolve_task_chunk(
            task_chunk,
            per_device,
            lambda: traces_per_task_weights(
                learner.loss, params, *jax.tree.map(lambda a: a[0], (episodes, keys))
            ),
        )
        full, rest = divmod(per_device, chunk)
        split = jax.tree.map(
            lambda a: a.reshape((devices, per_device, *a.shape[1:])), (episodes, keys)
        )

        def gather(lo, count, stacked):
            # [devices, count, ...] of tasks lo..lo+count of each device, flattened.
            part = jax.tree.map(lambda a: a[:, lo : lo + count], stacked)
            return jax.tree.map(lambda a: a.reshape((devices * count, *a.shape[2:])), part)

        def run(part):
            return chunk_grad(params, *split_tasks(part))

        if full == 1 and rest == 0:
            (total, metrics), grads = run(gather(0, per_device, split))
        else:
            chunks = jax.tree.map(
                lambda a: (
                    a[:, : full * chunk]
                    .reshape((devices, full, chunk, *a.shape[2:]))
                    .swapaxes(0, 1)
                    .reshape((full, devices * chunk, *a.shape[2:]))
                ),
                split,
            )

            def body(carry, part):
                (total, metrics), grads = run(part)
                # The sum keeps the carry's dtype (float64 only where x64 is on).
                total = carry[0] + total.astype(carry[0].dtype)
                return (total, jax.tree.map(jnp.add, carry[1], grads)), metrics

            zeros = (jnp.zeros((), jnp.result_type(float)), jax.tree.map(jnp.zeros_like, params))
            (total, grads), metrics = jax.lax.scan(body, zeros, chunks)
            metrics = jax.tree.map(lambda a: a.reshape((-1, *a.shape[2:])), metrics)
            if rest:
                (rest_total, rest_metrics), rest_grads = run(gather(full * chunk, rest, split))
                total, grads = jax.tree.map(jnp.add, (total, grads), (rest_total, rest_grads))
                metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, rest_metrics)
        scale = 1.0 / tasks
        grads = jax.tree.map(lambda g: (g * scale).astype(g.dtype), grads)
        return total * scale, jax.tree.map(jnp.mean, metrics), grads

    def step(state: TrainState, data):
        key, sample_key, loss_key = jax.random.split(state.key, 3)
        # Each device samples the tasks whose keys it holds: sampling is sharded too.
        sample_keys = split_tasks(jax.random.split(sample_key, tasks))
        episodes = jax.vmap(sampler.sample, in_axes=(0, None))(sample_keys, data)
        loss, metrics, grads = loss_and_grads(
            state.params, episodes, split_tasks(jax.random.split(loss_key, tasks))
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # The new parameters too: an optimizer can overflow from finite gradients, and a
        # checkpoint must never hold what a later step would only then reveal.
        finite = jnp.isfinite(loss)
        for leaf in jax.tree.leaves((grads, params)):
            if jnp.issubdtype(leaf.dtype, jnp.inexact):
                finite &= jnp.all(jnp.isfinite(leaf))
        metrics = {**metrics, "objective": loss, "finite": finite.astype(jnp.float32)}
        return TrainState(state.step + 1, params, opt_state, key), metrics

    options = compiler_options()
    if mesh is None:
        return jax.jit(step, donate_argnums=0, compiler_options=options)
    return jax.jit(
        step,
        in_shardings=(replicated(mesh), replicated(mesh)),
        out_shardings=(replicated(mesh), replicated(mesh)),
        donate_argnums=0,
        compiler_options=options,
    )


def resolve_task_chunk(task_chunk: int | str | None, tasks: int, per_task_weights) -> int:
    """The number of tasks differentiated together out of ``tasks`` (see
    :func:`make_train_step`). ``"auto"`` is 1 on the CPU for a learner that adapts
    weights per task (``per_task_weights()`` says, when asked) and all of them otherwise.
    """
    if task_chunk == "auto":
        one_by_one = jax.default_backend() == "cpu" and per_task_weights()
        task_chunk = 1 if one_by_one else None
    return tasks if task_chunk is None else min(task_chunk, tasks)


def episode_key(key: Array, index) -> tuple[Array, Array]:
    """The keys of test episode ``index`` drawn from ``key``: ``(sample_key, predict_key)``.

    A function of ``(key, index)`` only, so the episodes an evaluation scores do not
    depend on how it batches them.

    Example:
      >>> import jax
      >>> a, _ = episode_key(jax.random.key(0), 3)
      >>> b, _ = episode_key(jax.random.key(0), 3)
      >>> bool((jax.random.key_data(a) == jax.random.key_data(b)).all())
      True
    """
    sample_key, predict_key = jax.random.split(jax.random.fold_in(key, index))
    return sample_key, predict_key


def make_eval_step(
    learner: Learner, sampler: EpisodeSampler, *, tasks: int, mesh: Mesh | None = None
):
    """The jitted ``(params, key, data, start=0) -> per-task metric arrays`` over ``tasks`` tasks.

    Task ``j`` is test episode ``start + j`` of ``key`` (see :func:`episode_key`), so
    calls with ``start = 0, tasks, 2 * tasks, ...`` score episodes ``0, 1, 2, ...``
    whatever ``tasks`` is. Pass ``start`` as an integer array (``np.int32(...)``) to
    reuse one compilation across calls.

    Classification tasks (integer query labels) report accuracy; regression tasks
    report the mean squared error of ``predict`` against the query targets. With a
    ``mesh``, ``params`` and ``data`` must be replicated on it; the tasks are split
    across its devices when ``tasks`` is a multiple of its size.

    Example:
      >>> import jax, numpy as np
      >>> from metajax import mlp, pool_sampler, protonet
      >>> sampler = pool_sampler(np.random.rand(6, 4, 3), ways=2, shots=1, queries=2)
      >>> learner = protonet(mlp(hidden=(8,)))
      >>> params = learner.init(jax.random.key(0), sampler.sample(jax.random.key(1), sampler.data))
      >>> step = make_eval_step(learner, sampler, tasks=4)
      >>> step(params, jax.random.key(2), sampler.data, np.int32(4))["accuracy"].shape
      (4,)
    """
    check_int("tasks", tasks, 1)

    def one(params, key, index, data):
        sample_key, predict_key = episode_key(key, index)
        episode = sampler.sample(sample_key, data)
        outputs = learner.predict(params, episode.support, episode.query.x, predict_key)
        if jnp.issubdtype(episode.query.y.dtype, jnp.integer):
            return {"accuracy": jnp.mean(jnp.argmax(outputs, -1) == episode.query.y)}
        return {"mse": jnp.mean(jnp.square(outputs - episode.query.y))}

    def step(params, key, data, start=0):
        indices = start + jnp.arange(tasks, dtype=jnp.int32)
        if mesh is not None and tasks % mesh.size == 0:
            indices = jax.lax.with_sharding_constraint(indices, task_sharded(mesh))
        return jax.vmap(one, in_axes=(None, None, 0, None))(params, key, indices, data)

    options = compiler_options()
    if mesh is None:
        return jax.jit(step, compiler_options=options)
    return jax.jit(
        step,
        in_shardings=replicated(mesh),
        out_shardings=replicated(mesh),
        compiler_options=options,
    )


def make_evaluator(
    learner: Learner,
    sampler: EpisodeSampler,
    *,
    episodes: int = 600,
    batch: int = 50,
    mesh: Mesh | None = None,
) -> Callable[[Any, Array], Evaluation]:
    """``(params, key) -> Evaluation`` over ``episodes`` test tasks, compiled once.

    Use this rather than :func:`evaluate` to score repeatedly (e.g. validation
    during training) without recompiling. With a ``mesh`` the parameters are
    expected replicated on it (as :func:`meta_train` keeps them) and each batch of
    test tasks is split across its devices.

    Example:
      >>> import jax, numpy as np
      >>> from metajax import mlp, pool_sampler, protonet
      >>> sampler = pool_sampler(np.random.rand(6, 4, 3), ways=2, shots=1, queries=2)
      >>> learner = protonet(mlp(hidden=(8,)))
      >>> params = learner.init(jax.random.key(0), sampler.sample(jax.random.key(1), sampler.data))
      >>> score = make_evaluator(learner, sampler, episodes=20, batch=10)
      >>> score(params, jax.random.key(2)).episodes
      20
    """
    check_learner(learner, needs=("predict",))  # scoring needs nothing else
    check_sampler("sampler", sampler)
    check_int("episodes", episodes, 2)
    check_int("batch", batch, 1)
    batch = min(batch, episodes)
    step = make_eval_step(learner, sampler, tasks=batch, mesh=mesh)
    data = sampler.data if mesh is None else replicate(sampler.data, mesh)

    def run(params, key) -> Evaluation:
        # Episode i is episode_key(key, i) whatever the batch: the key alone fixes them.
        chunks = [
            jax.device_get(step(params, key, data, np.int32(start)))
            for start in range(0, episodes, batch)
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
      key: the PRNG key; the same key gives the same episodes (episode ``i`` is drawn
        from :func:`episode_key` ``(key, i)``), whatever ``batch`` is.
      episodes: test tasks; 600 or more is the literature's convention.
      batch: tasks per jitted call (memory versus overhead); it does not change the
        episodes or the result.

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


def is_transductive(
    learner: Learner,
    params: Any,
    sampler: EpisodeSampler,
    *,
    key: Array,
    rtol: float = 1e-4,
) -> bool:
    """Whether ``learner`` predicts a query from the other queries of its episode too.

    A prediction is transductive when it reads the test episode's query set as a
    whole: batch statistics over the queries (Conv-4's batch norm here keeps no running
    averages), attention across queries, a query-set refinement. Papers report such
    numbers apart (Nichol et al. 2018 give Reptile both ways), so a result should say
    which it is. This measures it rather than trusting a label: the first and the last
    query of an episode from ``sampler`` are predicted twice, once with the episode's
    other queries and once with those replaced by the support's inputs, which changes
    the query set's statistics. The answer is ``True`` when either prediction moves
    by more than ``rtol`` of its size.

    Args:
      learner: the learner whose ``predict`` is probed.
      params: its meta-parameters (trained or freshly initialised: the dependence is
        the architecture's, but a degenerate init could hide it).
      sampler: test episodes with at least 3 queries.
      key: draws the episode and the (shared) key of both predictions.
      rtol: the relative change counted as a dependence; float32 rounding of the same
        computation is far below the default.

    Example:
      >>> import jax, numpy as np
      >>> from metajax import conv4, mlp, pool_sampler, protonet
      >>> sampler = pool_sampler(np.random.rand(6, 4, 16, 16, 1), ways=2, shots=1, queries=2)
      >>> episode = sampler.sample(jax.random.key(1), sampler.data)
      >>> for model in (conv4(filters=4), mlp(hidden=(8,))):
      ...     learner = protonet(model)
      ...     params = learner.init(jax.random.key(0), episode)
      ...     print(is_transductive(learner, params, sampler, key=jax.random.key(2)))
      True
      False
    """
    check_learner(learner, needs=("predict",))
    check_sampler("sampler", sampler)
    check_key("key", key)
    check_float("rtol", rtol, 0.0, low_open=True)
    sample_key, predict_key = jax.random.split(key)
    episode = sampler.sample(sample_key, sampler.data)
    query_x = jnp.asarray(episode.query.x)
    n = query_x.shape[0]
    if n < 3:
        raise ValueError(f"sampler: is_transductive needs episodes of at least 3 queries, got {n}")
    predict = jax.jit(learner.predict)
    base = predict(params, episode.support, query_x, predict_key)
    # Real inputs in place of the other queries (the support's, cycled), not a transform
    # of them: inputs may carry a mask channel, and a per-example normalisation would
    # undo an affine change.
    support_x = jnp.asarray(episode.support.x)
    stand_ins = support_x[jnp.arange(n) % support_x.shape[0]].astype(query_x.dtype)
    for probe in (0, n - 1):
        others = (jnp.arange(n) != probe).reshape((n,) + (1,) * (query_x.ndim - 1))
        out = predict(params, episode.support, jnp.where(others, stand_ins, query_x), predict_key)
        if _moved(base[probe], out[probe], rtol):
            return True
    return False


def _moved(before: Array, after: Array, rtol: float) -> bool:
    # Logits may be -inf for classes absent from the support (TapNet's prototype slots):
    # compare where both are finite; a change of which are finite is a change too.
    finite = jnp.isfinite(before)
    if not bool(jnp.all(finite == jnp.isfinite(after))):
        return True
    before, after = jnp.where(finite, before, 0.0), jnp.where(finite, after, 0.0)
    scale = max(float(jnp.max(jnp.abs(before))), 1.0)
    return float(jnp.max(jnp.abs(after - before))) > rtol * scale


class Best(NamedTuple):
    """The best meta-validated parameters of a run: what its best checkpoint holds.

    Attributes:
      step: the meta-step they were validated at (the later of equals, as the
        checkpoint manager keeps it).
      params: the meta-parameters at that step; ``None`` only when a resumed run finds
        that step's checkpoint no longer on disk.
      metric: the validation metric that ranked them (``"val_accuracy"`` or ``"val_mse"``).
      value: its value there.
    """

    step: int
    params: Any
    metric: str
    value: float


class TrainResult(tuple):
    """What :func:`meta_train` returns: the pair ``(state, history)``, with ``best`` beside it.

    It unpacks as two items, ``state, history = meta_train(...)``, as it always did;
    ``.state`` and ``.history`` name them, and ``.best`` is the :class:`Best`
    meta-validated parameters, or ``None`` when the run validated nothing.

    Example:
      >>> result = TrainResult("state", [{"step": 1}], None)
      >>> state, history = result
      >>> result.state, result.history, result.best
      ('state', [{'step': 1}], None)
    """

    def __new__(cls, state: TrainState, history: list[dict[str, float]], best: Best | None):
        result = super().__new__(cls, (state, history))
        result._best = best
        return result

    def __getnewargs__(self):
        return (self[0], self[1], self._best)

    @property
    def state(self) -> TrainState:
        """The final :class:`TrainState`."""
        return self[0]

    @property
    def history(self) -> list[dict[str, float]]:
        """The logged metric dicts, one per ``log_every`` steps."""
        return self[1]

    @property
    def best(self) -> Best | None:
        """The best meta-validated step and parameters; ``None`` without validation."""
        return self._best

    def __repr__(self) -> str:
        best = None if self._best is None else f"Best(step={self._best.step}, ...)"
        return f"TrainResult(state=..., history=[{len(self[1])} records], best={best})"


class NonFiniteError(FloatingPointError):
    """A meta-step produced a non-finite loss or gradient; the run stopped before saving it."""


def _learner_name(learner: Learner) -> str:
    # A wrapper made with functools.wraps (checked()) names the factory's own function.
    loss = inspect.unwrap(learner.loss)
    factory = loss.__qualname__.split(".<locals>")[0]
    module = loss.__module__.rsplit(".", 1)[-1]
    return factory if factory == module else f"{factory} ({loss.__module__})"


def validation_metric(sampler: EpisodeSampler) -> tuple[str, str]:
    """The validation metric :func:`make_eval_step` reports for ``sampler``, and its best mode."""
    episode = jax.eval_shape(sampler.sample, jax.random.key(0), sampler.data)
    if jnp.issubdtype(episode.query.y.dtype, jnp.integer):
        return "val_accuracy", "max"
    return "val_mse", "min"


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
    mesh: Mesh | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool = False,
    name: str | None = None,
) -> TrainResult:
    """Meta-trains ``learner`` for ``steps`` meta-steps of ``tasks`` tasks each.

    The run is a deterministic function of ``key``: with checkpoints, a run killed at
    any point and restarted with ``resume=True`` ends with the same parameters and
    the same logged metrics (wall times aside) as one that was never interrupted.

    Args:
      learner: any :class:`~metajax.core.learner.Learner`.
      sampler: meta-training episodes. It is a pure function of the run's key, so the
        key in the checkpoint is the whole state of the sampler.
      optimizer: the outer (meta) optimizer.
      steps: number of meta-steps.
      key: PRNG key; the run is a deterministic function of it.
      tasks: tasks per meta-step (the meta-batch), vmapped.
      params: initial meta-parameters; ``learner.init`` on a sampled episode if None.
      metrics_path: a JSONL file that gets one line of averaged metrics every
        ``log_every`` steps (appended; on resume it is rewritten from the checkpoint's
        log first, so lines logged after the last checkpoint are not repeated).
      log_every: meta-steps per logged line, shown metrics and finiteness check.
      progress: show a tqdm progress bar that ticks every meta-step (without waiting
        for the device) and shows the metrics logged last.
      validation: ``(sampler, every)``: evaluate on meta-validation episodes every
        ``every`` meta-steps (a multiple of ``log_every``), log them with a ``val_``
        prefix, checkpoint there, and keep the best checkpoint by that metric.
      validation_episodes: episodes per validation pass.
      time_limit: seconds of training after which to stop early, at the first step
        past it, which is logged and checkpointed (a budgeted run); ``state.step`` says
        how many steps ran.
      mesh: a :func:`~metajax.training.distributed.task_mesh`: split each meta-batch's tasks
        across its devices (``tasks`` must be a multiple of its size). ``None`` runs
        on the default device.
      checkpoint_dir: where orbax checkpoints go; ``None`` writes none.
      checkpoint_every: meta-steps between checkpoints, a multiple of ``log_every``
        (default: 1000 rounded up to one); also at every validation pass and at the end.
      keep: how many recent checkpoints to keep (the best one is kept besides).
      resume: continue from the newest readable checkpoint in ``checkpoint_dir``
        (start afresh if it holds none).
      name: the learner's name in messages (default: its factory's name).

    Returns:
      A :class:`TrainResult`: it unpacks as ``state, history`` (the final
      :class:`TrainState` and the list of logged metric dicts), and its ``best`` is
      the :class:`Best` meta-validated ``step``, ``params``, ``metric`` and ``value``
      (the parameters the best checkpoint holds; after a resume they are read from
      it), or ``None`` without ``validation`` or before the first validation.

    Raises:
      NonFiniteError: a meta-step's loss, gradient or new parameters were NaN or
        infinite. The message names the step and the learner; no checkpoint is
        written after the last good one.

    Example:
      >>> import jax, numpy as np, optax
      >>> from metajax import protonet, mlp, pool_sampler, meta_train
      >>> sampler = pool_sampler(np.random.rand(6, 10, 4), ways=3, shots=1, queries=2)
      >>> state, history = meta_train(protonet(mlp(hidden=(8,))), sampler, optax.adam(1e-3),
      ...                             steps=4, key=jax.random.key(0), log_every=2, progress=False)
      >>> int(state.step), len(history)
      (4, 2)

      With validation, the result also carries the best validated parameters:

      >>> val = pool_sampler(np.random.rand(6, 10, 4), ways=3, shots=1, queries=2)
      >>> result = meta_train(protonet(mlp(hidden=(8,))), sampler, optax.adam(1e-3), steps=4,
      ...                     key=jax.random.key(0), log_every=2, progress=False,
      ...                     validation=(val, 2), validation_episodes=10)
      >>> state, history = result
      >>> result.best.step in (2, 4), result.best.metric, len(result.best.params) > 0
      (True, 'val_accuracy', True)
    """
    check_int("steps", steps, 0)
    check_int("log_every", log_every, 1)
    check_int("keep", keep, 1)
    if validation is not None:
        every = validation[1]
        bad = not isinstance(every, int) or isinstance(every, bool) or every < 1
        if bad or every % log_every:
            raise ValueError(
                f"validation every must be a multiple of log_every={log_every}, got {every!r}"
            )
    if checkpoint_every is None:
        checkpoint_every = -(-1000 // log_every) * log_every
    else:
        check_int("checkpoint_every", checkpoint_every, 1)
        if checkpoint_every % log_every:
            raise ValueError(
                f"checkpoint_every must be a multiple of log_every={log_every}, so that every "
                f"checkpoint follows a finiteness check; got {checkpoint_every}"
            )
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds or None, got {time_limit!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir, the folder to resume from")
    if mesh is not None:
        check_tasks(tasks, mesh)
    name = name or _learner_name(learner)
    state = init_state(learner, optimizer, sampler, key, params)
    data = sampler.data
    if mesh is not None:
        state, data = replicate((state, data), mesh)
    step_fn = make_train_step(learner, optimizer, sampler, tasks=tasks, mesh=mesh)
    validate, best_metric, best_mode = None, None, "max"
    if validation is not None:
        validate = make_evaluator(learner, validation[0], episodes=validation_episodes, mesh=mesh)
        best_metric, best_mode = validation_metric(validation[0])
    manager = None
    if checkpoint_dir is not None:
        manager = checkpoint_manager(
            checkpoint_dir, keep=keep, best_metric=best_metric, best_mode=best_mode
        )
    history: list[dict[str, float]] = []
    best: dict | None = None
    best_params = None  # a copy of the best parameters validated in this call
    done, wall_before = 0, 0.0
    if resume and manager.all_steps():
        state, meta, done = restore_state(manager, state)
        if meta.get("tasks") != tasks:
            raise ValueError(
                f"tasks={tasks} differs from the checkpointed run's {meta.get('tasks')}; "
                "resume with the same settings"
            )
        history, best, wall_before = meta["history"], meta["best"], meta["wall_s"]
        if validate is not None and best is not None and best["step"] in manager.all_steps():
            # Read the best now: orbax does not carry the metrics of checkpoints written
            # before a resume, so its retention may drop that step once new ones arrive.
            best_params = restore_state(manager, state, step=best["step"])[0].params
    if metrics_path is not None:
        metrics_path = Path(metrics_path)
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            write_atomic(metrics_path, "".join(json.dumps(r) + "\n" for r in history).encode())

    def checkpoint(i: int, record: dict | None) -> None:
        meta = {
            "learner": name,
            "tasks": tasks,
            # A copy: orbax writes the metadata in the background, after later steps have
            # appended to the live list (a resume then logged some steps twice).
            "history": list(history),
            "best": best,
            "wall_s": wall_before + time.perf_counter() - start,
        }
        ranked = None
        if record is not None and best_metric in record:
            ranked = {best_metric: record[best_metric]}
        save_state(manager, i, state, meta, ranked)

    pending: list[dict[str, Array]] = []
    start = time.perf_counter()
    bar = tqdm(
        total=steps, initial=done, disable=not progress, dynamic_ncols=True, desc="meta-train"
    )
    try:
        for i in range(done + 1, steps + 1):
            state, metrics = step_fn(state, data)
            pending.append(metrics)
            # The host knows the step count: the bar ticks without waiting for the device.
            bar.update(1)
            # The clock is read every step, so that a time limit holds whatever log_every
            # is (a paper config may log every 1000 steps); the host runs ahead of the
            # device by at most its dispatch queue, which the fetch below waits for.
            out_of_time = time_limit is not None and time.perf_counter() - start >= time_limit
            if i % log_every and i != steps and not out_of_time:
                continue
            fetched = jax.device_get(pending)
            pending = []
            for offset, m in enumerate(fetched):
                if not m["finite"]:
                    bad = i - len(fetched) + 1 + offset
                    last = None
                    if manager is not None:
                        manager.wait_until_finished()
                        last = manager.latest_step()
                    kept = (
                        f"the last good checkpoint is step {last} in {manager.directory}"
                        if last is not None
                        else "no checkpoint was written"
                    )
                    # The objective that was judged, not the learner's loss metric: they
                    # differ for Reptile, and a learner need not report a loss metric.
                    objective = float(m["objective"])
                    what = (
                        f"the objective is {objective}"
                        if not math.isfinite(objective)
                        else f"the objective ({objective:.4g}) is finite but a gradient or "
                        "an updated parameter is not"
                    )
                    raise NonFiniteError(
                        f"meta-training of {name} stopped at meta-step {bad}: {what}; {kept}"
                    )
            record = {"step": i, "wall_s": round(wall_before + time.perf_counter() - start, 3)}
            record.update(
                {
                    k: float(np.mean([m[k] for m in fetched]))
                    for k in fetched[0]
                    if k not in ("finite", "objective")
                }
            )
            validated = validate is not None and (i % validation[1] == 0 or i == steps)
            if validated:
                val = validate(state.params, jax.random.fold_in(key, i))
                record.update({f"val_{k}": v for k, v in val.mean.items()})
                # Ties go to the later step, as orbax's BestN keeps it.
                better = best is None or (
                    record[best_metric] >= best["value"]
                    if best_mode == "max"
                    else record[best_metric] <= best["value"]
                )
                if better:
                    best = {"step": i, "value": record[best_metric]}
                    # A copy: the next step donates the buffers of state.params.
                    best_params = jax.tree.map(jnp.copy, state.params)
            history.append(record)
            if metrics_path is not None:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            bar.set_postfix(
                {k: f"{v:.4g}" for k, v in record.items() if k not in ("step", "wall_s")}
            )
            if manager is not None and (
                i % checkpoint_every == 0 or validated or i == steps or out_of_time
            ):
                checkpoint(i, record)
            if out_of_time:
                break
        if validate is not None and best is not None and best_params is None:
            # Validated before a resume: the best checkpoint holds the parameters.
            manager.wait_until_finished()
            if best["step"] in manager.all_steps():
                best_params = restore_state(manager, state, step=best["step"])[0].params
    finally:
        bar.close()
        if manager is not None:
            manager.wait_until_finished()
            manager.close()
    result = None
    if validate is not None and best is not None:
        result = Best(best["step"], best_params, best_metric, best["value"])
    return TrainResult(state, history, result)
