"""The learner interface shared by every meta-learning method.

A :class:`Learner` is a NamedTuple of pure functions, built by a factory that
closes over keyword-only hyperparameters, in the way ``optax.GradientTransformation``
is. Every function handles one task; batches of tasks come from ``jax.vmap`` at the
call site (the trainer does it). Nothing is mutable: adapting to a task returns new
parameters, it never changes the learner.

Why three functions and not one: ``loss`` is the meta-training objective, which for
some methods differs from what is done at test time (MAML adapts with more steps at
test, Siamese networks train on pairs but predict by nearest support example), and
``predict`` is what evaluation and users call on a new task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from metajax.core.episodes import Episode, Split

Array = jax.Array
Params = Any
Metrics = dict[str, Array]


class Learner(NamedTuple):
    """A meta-learning method as pure functions of one task.

    Attributes:
      init: ``(key, episode) -> params``, the meta-parameters, from an example episode.
      loss: ``(params, episode, key) -> (scalar, metrics)``, the outer objective on
        one task; ``metrics`` is a dict of scalars (``loss`` and ``accuracy`` or ``mse``).
      predict: ``(params, support, query_x, key) -> outputs`` after adapting to
        ``support``: class logits ``[n_query, classes]`` for classification (argmax
        is the prediction), or regression outputs shaped like the query targets.
    """

    init: Callable[[Array, Episode], Params]
    loss: Callable[[Params, Episode, Array], tuple[Array, Metrics]]
    predict: Callable[[Params, Split, Array, Array], Array]


def checked(
    learner: Learner,
    *,
    labels: str = "integer",
    min_rank: int = 2,
    key: str = "optional",
    init_key: str = "required",
) -> Learner:
    """``learner`` with the shared input checks run once, where its functions are entered.

    Every public learner factory returns ``checked(Learner(init, loss, predict), ...)``,
    so the bodies (and what they call: the inner loop, the meta-gradient) never check
    an episode again. The checks read shapes and dtypes only: under ``jit`` they run
    once, at tracing, and cost nothing afterwards. A ``loss`` that calls its own
    (unwrapped) ``predict`` is checked once, not twice.

    Args:
      learner: the unchecked functions.
      labels: ``"integer"`` (class labels ``[n]``) or ``"any"`` (those, or floating
        regression targets ``[n, *outputs]``).
      min_rank: the least rank of ``x`` (2 for ``[n, *features]``).
      key: ``"optional"`` (``None`` allowed) or ``"required"``, for ``loss`` and ``predict``.
      init_key: the same, for ``init``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax import Episode, Split
      >>> raw = Learner(lambda k, e: {}, lambda p, e, k: (0.0, {}), lambda p, s, q, k: q)
      >>> learner = checked(raw)
      >>> bad = Episode(Split(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32)),
      ...               Split(jnp.zeros((2, 4)), jnp.zeros(2, jnp.int32)))
      >>> learner.loss({}, bad, None)  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: query.x features (4,) differ from support's (3,): ...
    """
    from metajax.core.validation import (
        check_choice,
        check_episode,
        check_features,
        check_key,
        check_split,
    )

    check_choice("labels", labels, ("integer", "any"))
    check_choice("key", key, ("optional", "required"))
    check_choice("init_key", init_key, ("optional", "required"))
    raw_init, raw_loss, raw_predict = learner

    def init(rng, episode):
        check_key("key", rng, optional=init_key == "optional")
        check_episode("episode", episode, labels=labels, min_rank=min_rank)
        return raw_init(rng, episode)

    def loss(params, episode, rng=None):
        check_key("key", rng, optional=key == "optional")
        check_episode("episode", episode, labels=labels, min_rank=min_rank)
        return raw_loss(params, episode, rng)

    def predict(params, support, query_x, rng=None):
        check_key("key", rng, optional=key == "optional")
        check_split("support", support, labels=labels, min_rank=min_rank)
        check_features("query_x", query_x, "support", support.x)
        return raw_predict(params, support, query_x, rng)

    return Learner(init=init, loss=loss, predict=predict)
