"""Whether a network's output head fits an episode: one logit per class, or the targets' shape.

The optimization-based learners adapt and score a network's raw outputs. Two
mistakes there train without an error: a head narrower than the episode's ways
(cross-entropy of a label with no logit is NaN, so training ends in NaN), and a
backbone built without a head (``conv4()``, ``mlp()``), whose embedding features
are then trained on as if they were logits. Both are caught at ``init``, where the
example episode is at hand, and named after the learner.

What is knowable there:

* whether the model has a head, where the model says so (``Model.head``: ``conv4``
  and ``mlp`` do). A model of one's own that says nothing is taken as it is;
* the output shape, from ``jax.eval_shape`` of ``apply`` (nothing is computed);
* the largest class label, when the labels are concrete (``init`` called eagerly,
  as :func:`~metajax.init_state` does). Under ``jit`` or ``eval_shape`` they are
  not, and the number of ways cannot be read from shapes (a support of ``n``
  examples may hold any number of classes up to ``n``), so only the first two hold.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metajax.core.episodes import Episode

_UNKNOWN = object()


def declared_outputs(model):
    """The width of ``model``'s head as the model declares it: an int, ``None`` for no head.

    Returns ``_UNKNOWN`` for a model that does not say (a ``Model`` of one's own).

    Example:
      >>> from metajax import mlp
      >>> declared_outputs(mlp(outputs=5)), declared_outputs(mlp())
      (5, None)
    """
    head = getattr(model, "head", None)
    if head is None:
        return _UNKNOWN
    return head or None


def _largest_label(*labels) -> int | None:
    """The largest integer label if the labels are concrete, else ``None``."""
    try:
        values = [np.asarray(y) for y in labels]
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None
    values = [v for v in values if v.size]
    return int(max(v.max() for v in values)) if values else None


def check_head(learner: str, outputs, episode: Episode, *, declared=_UNKNOWN) -> None:
    """Raises a ``ValueError`` naming ``learner`` unless outputs of shape ``outputs`` fit ``episode``.

    Args:
      learner: the learner's name, for the message (``"maml"``).
      outputs: the shape of the network's outputs on ``episode.support.x``.
      episode: the example episode of ``init``.
      declared: the head's width as the model declares it (:func:`declared_outputs`).

    Example:
      >>> import jax.numpy as jnp
      >>> from metajax import Episode, Split
      >>> split = Split(jnp.zeros((5, 2)), jnp.arange(5))
      >>> check_head("maml", (5, 3), Episode(split, split))
      Traceback (most recent call last):
      ...
      ValueError: maml: the model has 3 outputs but the episode has labels up to 4: it needs one output per class (outputs >= 5, e.g. conv4(outputs=5))
    """  # noqa: E501
    if declared is None:
        raise ValueError(
            f"{learner}: the model has no output head (a backbone built without outputs=, "
            "whose outputs are embedding features, not one per class): build it with "
            "outputs=ways, e.g. conv4(outputs=5), or outputs=1 for regression"
        )
    outputs = tuple(outputs)
    support, query = episode.support, episode.query
    if jnp.issubdtype(support.y.dtype, jnp.integer):
        if len(outputs) != 2:
            raise ValueError(
                f"{learner}: for integer labels the model must output logits "
                f"[n, classes], got outputs of shape {outputs}"
            )
        top = _largest_label(support.y, query.y)
        if top is not None and outputs[1] <= top:
            raise ValueError(
                f"{learner}: the model has {outputs[1]} outputs but the episode has labels up "
                f"to {top}: it needs one output per class (outputs >= {top + 1}, e.g. "
                f"conv4(outputs={top + 1}))"
            )
    elif outputs[1:] != tuple(support.y.shape[1:]):
        raise ValueError(
            f"{learner}: the model's outputs {outputs[1:]} per example differ from the "
            f"targets' {tuple(support.y.shape[1:])}: its head must match the targets "
            "(e.g. outputs=1 for sinusoids)"
        )


def check_model_head(learner: str, model, params, episode: Episode) -> None:
    """:func:`check_head` for ``model`` with ``params``, its output shape from ``eval_shape``."""
    declared = declared_outputs(model)
    if declared is None:  # No head: the message says so before any shape is read.
        outputs = ()
    else:
        outputs = jax.eval_shape(model.apply, params, episode.support.x).shape
    check_head(learner, outputs, episode, declared=declared)
