"""The one inner loop of the optimization-based learners, and the per-task meta-objective.

:func:`adapt` runs ``steps`` updates of a task's support loss as a ``lax.scan``,
with a plain SGD step (a scalar or per-parameter learning rate) or any optax
transformation, and an optional proximal term ``(lambda / 2) ||phi - theta||^2``
that keeps the adapted parameters ``phi`` near the meta-parameters ``theta``.

:func:`adapted_loss` scores the adapted parameters on the query set. How its
gradient reaches ``theta`` is the ``meta_gradient`` argument, an object that carries
its own method (:mod:`~metajax.learners.optimization.meta_gradient`: :class:`Unrolled`,
:class:`FirstOrder`, :class:`Implicit`), in the manner of optimistix's ``adjoint=``.

Both public functions check their arguments once, where a user enters them. The
learners call the unchecked :func:`_adapt` and :func:`_adapted_loss`: their
factories have checked the hyperparameters and :func:`~metajax.core.learner.checked`
the episode and key, so nothing is checked again on the way in.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax

from metajax.core.episodes import Episode, Split
from metajax.core.validation import (
    check_episode,
    check_float,
    check_int,
    check_key,
    check_optimizer,
    check_split,
)
from metajax.learners.optimization.linalg import conjugate_gradient, squared_distance
from metajax.learners.optimization.meta_gradient import (
    FirstOrder,
    Implicit,
    InnerProblem,
    MetaGradient,
    OuterLoss,
    TaskLoss,
    Unrolled,
)

__all__ = [
    "FirstOrder",
    "Implicit",
    "InnerProblem",
    "MetaGradient",
    "Unrolled",
    "adapt",
    "adapted_loss",
    "check_inner_config",
    "conjugate_gradient",
]

Array = jax.Array
Params = Any


def check_inner_config(
    *, steps: int, learning_rate=None, optimizer=None, proximal: float = 0.0
) -> None:
    """Raises a ``ValueError`` naming the argument for an impossible inner-loop setting.

    A learning rate given as an array or pytree (Meta-SGD's learned rates) may be
    traced, so only a Python or NumPy scalar is range-checked.

    Example:
      >>> check_inner_config(steps=0)
      Traceback (most recent call last):
      ...
      ValueError: inner steps must be an integer >= 1, got 0
    """
    check_int("inner steps", steps, 1)
    scalar = isinstance(learning_rate, int | float | np.integer | np.floating)
    if scalar and (isinstance(learning_rate, bool) or not 0 < learning_rate < np.inf):
        raise ValueError(
            f"inner learning rate must be > 0 and finite, got learning_rate={learning_rate!r}"
        )
    check_optimizer("optimizer", optimizer)
    check_float("proximal (lambda)", proximal, 0)


def _check_callable(name: str, fn) -> None:
    if not callable(fn):
        raise ValueError(f"{name} must be callable (params, split, key), got {fn!r}")


def _is_scalar(learning_rate) -> bool:
    """One rate for every parameter (a Python, NumPy or JAX scalar), not a pytree of rates."""
    if isinstance(learning_rate, int | float | np.generic):
        return True
    return isinstance(learning_rate, jax.Array | np.ndarray) and learning_rate.ndim == 0


def adapt(
    task_loss: TaskLoss,
    params: Params,
    support: Split,
    key: Array,
    *,
    steps: int,
    learning_rate: float | Params = 0.01,
    optimizer: optax.GradientTransformation | None = None,
    proximal: float = 0.0,
    anchor: Params = None,
) -> tuple[Params, Array]:
    """Adapts ``params`` to ``support`` with ``steps`` inner updates (a ``lax.scan``).

    Args:
      task_loss: ``(params, split, key) -> scalar`` on one task.
      params: where the inner loop starts (the meta-parameters, for MAML).
      support: the split adapted on.
      key: PRNG key, split per step.
      steps: inner steps (static).
      learning_rate: SGD step size, a scalar (Python, NumPy or JAX) or a pytree like
        ``params`` (Meta-SGD's learned per-parameter rates); ignored when
        ``optimizer`` is given.
      optimizer: an optax transformation for the inner updates instead of SGD.
      proximal: ``lambda`` of the proximal term ``(lambda/2) ||phi - anchor||^2``.
      anchor: the proximal centre; ``params`` if ``None``.

    Returns:
      The adapted parameters and the support loss before each step, ``[steps]``.

    Example:
      >>> import jax.numpy as jnp
      >>> loss = lambda w, s, k: jnp.mean((s.x @ w - s.y) ** 2)
      >>> support = Split(jnp.eye(2), jnp.array([1.0, 2.0]))
      >>> w, losses = adapt(loss, jnp.zeros(2), support, jax.random.key(0), steps=100,
      ...                   learning_rate=0.5)
      >>> jnp.round(w, 3).tolist()
      [1.0, 2.0]
    """
    _check_callable("task_loss", task_loss)
    check_inner_config(
        steps=steps, learning_rate=learning_rate, optimizer=optimizer, proximal=proximal
    )
    check_split("support", support, labels="any")
    check_key("key", key)
    return _adapt(
        task_loss,
        params,
        support,
        key,
        steps=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        proximal=proximal,
        anchor=anchor,
    )


def _adapt(
    task_loss: TaskLoss,
    params: Params,
    support: Split,
    key: Array,
    *,
    steps: int,
    learning_rate: float | Params = 0.01,
    optimizer: optax.GradientTransformation | None = None,
    proximal: float = 0.0,
    anchor: Params = None,
) -> tuple[Params, Array]:
    """:func:`adapt` without its checks, for callers that checked their inputs once."""
    anchor = params if anchor is None else anchor

    def objective(phi, k):
        value = task_loss(phi, support, k)
        if proximal:
            value = value + 0.5 * proximal * squared_distance(phi, anchor)
        return value

    grad_fn = jax.value_and_grad(objective)
    scalar_rate = _is_scalar(learning_rate)
    opt_state = optimizer.init(params) if optimizer is not None else ()

    def step(carry, k):
        phi, state = carry
        value, grads = grad_fn(phi, k)
        if optimizer is None:
            if scalar_rate:
                phi = jax.tree.map(lambda p, g: p - learning_rate * g, phi, grads)
            else:
                phi = jax.tree.map(lambda p, g, lr: p - lr * g, phi, grads, learning_rate)
        else:
            updates, state = optimizer.update(grads, state, phi)
            phi = optax.apply_updates(phi, updates)
        return (phi, state), value

    (phi, _), losses = jax.lax.scan(step, (params, opt_state), jax.random.split(key, steps))
    return phi, losses


def adapted_loss(
    task_loss: TaskLoss,
    outer_loss: OuterLoss,
    params: Params,
    episode: Episode,
    key: Array,
    *,
    steps: int,
    learning_rate: float | Params = 0.01,
    optimizer: optax.GradientTransformation | None = None,
    proximal: float = 0.0,
    meta_gradient: MetaGradient | None = None,
) -> tuple[Array, dict[str, Array]]:
    """Adapts on the support set, then scores the query set: MAML's per-task objective.

    The gradient of the returned loss with respect to ``params`` is the meta-gradient
    of ``meta_gradient`` (:class:`Unrolled` if ``None``; see
    :mod:`~metajax.learners.optimization.meta_gradient`). For :class:`Implicit`,
    ``proximal`` must be positive: the implicit equation holds at the optimum of the
    proximal inner problem, and the metrics gain ``cg_residual`` (relative) and
    ``cg_converged``.

    Returns:
      The query loss and metrics: the outer loss's own, plus ``inner_loss_first`` and
      ``inner_loss_last`` (support loss before the first and last inner step).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax import Episode, Split, Implicit
      >>> inner = lambda w, s, k: jnp.mean((s.x @ w - s.y) ** 2)
      >>> outer = lambda w, s, k: (inner(w, s, k), {})
      >>> task = Episode(Split(jnp.eye(2), jnp.array([1.0, 2.0])),
      ...                Split(jnp.eye(2), jnp.array([1.0, 2.0])))
      >>> loss, metrics = adapted_loss(inner, outer, jnp.zeros(2), task, jax.random.key(0),
      ...                              steps=5, learning_rate=0.5)
      >>> sorted(metrics)
      ['inner_loss_first', 'inner_loss_last']
      >>> meta_grad = jax.grad(lambda w: adapted_loss(
      ...     inner, outer, w, task, jax.random.key(0), steps=5, learning_rate=0.5, proximal=1.0,
      ...     meta_gradient=Implicit(cg_steps=5))[0])(jnp.zeros(2))
      >>> meta_grad.shape
      (2,)
    """
    meta_gradient = Unrolled() if meta_gradient is None else meta_gradient
    _check_callable("task_loss", task_loss)
    _check_callable("outer_loss", outer_loss)
    check_inner_config(
        steps=steps, learning_rate=learning_rate, optimizer=optimizer, proximal=proximal
    )
    check_episode("episode", episode, labels="any")
    check_key("key", key)
    if not isinstance(meta_gradient, MetaGradient):
        raise ValueError(
            "meta_gradient must be Unrolled(), FirstOrder(), Implicit(...) or another "
            f"object with check(proximal=) and loss(...) methods, got {meta_gradient!r}"
        )
    meta_gradient.check(proximal=proximal)
    return _adapted_loss(
        task_loss,
        outer_loss,
        params,
        episode,
        key,
        steps=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        proximal=proximal,
        meta_gradient=meta_gradient,
    )


def _adapted_loss(
    task_loss: TaskLoss,
    outer_loss: OuterLoss,
    params: Params,
    episode: Episode,
    key: Array,
    *,
    steps: int,
    learning_rate: float | Params = 0.01,
    optimizer: optax.GradientTransformation | None = None,
    proximal: float = 0.0,
    meta_gradient: MetaGradient | None = None,
) -> tuple[Array, dict[str, Array]]:
    """:func:`adapted_loss` without its checks, for callers that checked their inputs once."""
    meta_gradient = Unrolled() if meta_gradient is None else meta_gradient

    def inner_adapt(theta, support, k):
        return _adapt(
            task_loss,
            theta,
            support,
            k,
            steps=steps,
            learning_rate=learning_rate,
            optimizer=optimizer,
            proximal=proximal,
        )

    inner = InnerProblem(task_loss=task_loss, adapt=inner_adapt, proximal=proximal)
    return meta_gradient.loss(inner, outer_loss, params, episode, key)
