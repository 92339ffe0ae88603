"""What a learner's functions say about themselves while JAX traces them.

A learner that adapts the backbone's weights to each task (MAML and its kin) traces its
``loss`` and ``predict`` inside :func:`per_task_weights`. The backbones read it to choose
formulations that are faster or only correct for per-task weights on the CPU, and the
trainer asks :func:`traces_per_task_weights` how to go over a meta-batch. It is read
while tracing, so a compiled program keeps the choice it was traced with.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable

import jax

_PER_TASK_WEIGHTS = contextvars.ContextVar("metajax_per_task_weights", default=False)
# A list while traces_per_task_weights listens; per_task_weights appends to it.
_LISTENER = contextvars.ContextVar("metajax_per_task_listener", default=None)


@contextlib.contextmanager
def per_task_weights():
    """Marks the models traced inside as running with weights of their own per task.

    Gradient-based learners trace their inner loop and adapted predictions inside it.
    Inside it, ``conv4(convolution="auto")`` uses the im2col convolution on the CPU
    (XLA turns per-task kernels into grouped convolutions under ``vmap``, and runs
    second derivatives of convolutions on a slow path inside a task loop), the 2x2
    max-pool a formulation that XLA:CPU differentiates right per example
    (:func:`metajax.nets.backbones.max_pool_2x2`), and ``make_train_step`` goes over
    the CPU's meta-batch one task at a time. Wrap your own per-example gradients of a
    Conv-4 in it.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax import conv4
      >>> model = conv4(filters=4, blocks=1)
      >>> x = jnp.ones((2, 6, 6, 1))
      >>> params = model.init(jax.random.key(0), x)
      >>> with per_task_weights():
      ...     grads = jax.vmap(jax.grad(lambda p, x: model.apply(p, x).sum()), (None, 0))(
      ...         params, x[:, None])
      >>> grads["Conv_0"]["kernel"].shape
      (2, 3, 3, 1, 4)
    """
    listener = _LISTENER.get()
    if listener is not None:
        listener.append(True)
    token = _PER_TASK_WEIGHTS.set(True)
    try:
        yield
    finally:
        _PER_TASK_WEIGHTS.reset(token)


def adapts_per_task(fn: Callable) -> Callable:
    """``fn`` traced inside :func:`per_task_weights`: for a learner's ``loss`` and
    ``predict`` that adapt the backbone's weights to each task."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with per_task_weights():
            return fn(*args, **kwargs)

    return wrapped


def traces_per_task_weights(fn: Callable, *args) -> bool:
    """Whether tracing ``fn(*args)`` enters :func:`per_task_weights` (nothing is computed)."""
    listener = []
    token = _LISTENER.set(listener)
    try:
        # A new function each time: JAX caches traces by function, and a cached trace
        # runs no Python, so it would enter nothing.
        jax.eval_shape(lambda *a: fn(*a), *args)
    finally:
        _LISTENER.reset(token)
    return bool(listener)


def in_per_task_weights() -> bool:
    """Whether the code being traced runs inside :func:`per_task_weights`."""
    return _PER_TASK_WEIGHTS.get()
