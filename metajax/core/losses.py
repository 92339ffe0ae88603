"""Supervised losses with their metrics, chosen by the type of the targets."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy of ``logits [..., classes]`` against integer ``labels [...]``.

    The same values and derivatives as ``optax.softmax_cross_entropy_with_integer_labels``
    for labels in range, but the label's logit is picked by a ``where`` on the label, not
    a gather: the gather's derivative is a scatter-add, which XLA:CPU runs as a loop over
    the examples when vmapped (3 ms of the LSTM baseline's 20 ms meta-step, 800
    examples). Not a product with a one-hot vector either: other classes' ``-inf``
    logits (masked classes) would make ``0 * -inf``.
    """
    mask = labels[..., None] == jnp.arange(logits.shape[-1])
    picked = jnp.sum(jnp.where(mask, logits, 0), -1)
    return jax.nn.logsumexp(logits, axis=-1) - picked


def classification_loss(logits: jax.Array, labels: jax.Array):
    """Mean cross-entropy and accuracy of ``logits`` ``[n, classes]`` against integer labels."""
    loss = cross_entropy(logits, labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, {"loss": loss, "accuracy": accuracy}


def regression_loss(outputs: jax.Array, targets: jax.Array):
    """Mean squared error, reported as both ``loss`` and ``mse``."""
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {outputs.shape} and targets {targets.shape} must match")
    mse = jnp.mean(jnp.square(outputs - targets))
    return mse, {"loss": mse, "mse": mse}


def supervised_loss(outputs: jax.Array, targets: jax.Array):
    """Classification for integer targets, regression for floating targets."""
    if jnp.issubdtype(targets.dtype, jnp.integer):
        return classification_loss(outputs, targets)
    return regression_loss(outputs, targets)


def split_losses(apply):
    """``(task_loss, outer_loss)`` of a network ``apply(params, x)`` on a :class:`Split`.

    ``outer_loss(params, split, key) -> (scalar, metrics)`` scores a query set;
    ``task_loss(params, split, key) -> scalar`` is the same loss for inner loops.
    Every gradient-based learner adapts and scores with this pair.
    """

    def outer_loss(params, split, key):
        del key  # The supervised losses are deterministic.
        return supervised_loss(apply(params, split.x), split.y)

    def task_loss(params, split, key):
        return outer_loss(params, split, key)[0]

    return task_loss, outer_loss
