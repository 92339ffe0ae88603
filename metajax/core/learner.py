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

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from metajax.core.episodes import Episode, Split
from metajax.core.validation import (
    check_choice,
    check_features,
    check_int,
    check_key,
    check_split,
    check_splits_agree,
    episode_splits,
)

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
    min_support: int = 0,
    min_query: int = 0,
    extra: Callable[[Split, Array, Array | None], None] | None = None,
    init_check: Callable[[Params, Episode], None] | None = None,
) -> Learner:
    """``learner`` with the shared input checks run once, where its functions are entered.

    Every public learner factory returns ``checked(Learner(init, loss, predict), ...)``,
    so the bodies (and what they call: the inner loop, the meta-gradient) never check
    an episode again; a ``loss`` that calls its own (unwrapped) ``predict`` is checked
    once, not twice. This is rlax's and chex's placement: one line of checks where an
    input enters, none in the layers it passes through. The checks read shapes and
    dtypes only (and label values on eager calls, in ``extra``): under ``jit`` they
    run once, at tracing, and cost nothing afterwards.

    In order: the key; each split (``x`` floating of rank ``>= min_rank``, ``y`` as
    ``labels`` says, leading sizes equal, at least ``min_support`` / ``min_query``
    examples); then ``extra``; then that query and support hold the same kind of
    input. ``extra`` runs before that agreement so that a learner's own layout
    message (TapNet's ``[n, length, channels + 1]``) is the one a user sees.

    Args:
      learner: the unchecked functions.
      labels: ``"integer"`` (class labels ``[n]``) or ``"any"`` (those, or floating
        regression targets ``[n, *outputs]``).
      min_rank: the least rank of ``x`` (2 for ``[n, *features]``).
      key: ``"optional"`` (``None`` allowed) or ``"required"``, for ``loss`` and ``predict``.
      init_key: the same, for ``init``.
      min_support: the least number of support examples.
      min_query: the least number of query examples (or rows of ``query_x``).
      extra: the learner's own checks, ``extra(support, query_x, query_y)``, with
        ``query_y`` ``None`` for ``predict`` (and ``query_x`` not yet compared with
        the support's features there). Label values may be read through
        :func:`metajax.core.validation.concrete`, which is ``None`` under a trace.
      init_check: the learner's own checks of what ``init`` made against its example
        episode, ``init_check(params, episode)`` (a head one logit per class wide),
        run after ``init`` on the caller's episode, so that an eager call sees its
        label values.

    ``init`` runs the learner's ``init`` under ``jax.jit`` (compiled once per episode
    shape): called eagerly, as a user or :func:`~metajax.init_state` does, a network's
    initialisers would otherwise dispatch, and compile, one small XLA program per
    operation and parameter shape, which costs more than the whole initialisation as
    one program. So ``init`` must be a function of the shapes and values of its
    arguments only (no reading of concrete label values: that is ``init_check``'s).

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
    check_choice("labels", labels, ("integer", "any"))
    check_choice("key", key, ("optional", "required"))
    check_choice("init_key", init_key, ("optional", "required"))
    check_int("min_rank", min_rank, 1)
    check_int("min_support", min_support, 0)
    check_int("min_query", min_query, 0)
    for name, hook in (("extra", extra), ("init_check", init_check)):
        if hook is not None and not callable(hook):
            raise ValueError(f"{name} must be callable or None, got {type(hook).__name__}")
    raw_init, raw_loss, raw_predict = learner
    jitted_init = jax.jit(raw_init)
    split = {"labels": labels, "min_rank": min_rank}

    def check_episode(episode):
        support, query = episode_splits("episode", episode)
        check_split("support", support, **split, min_examples=min_support)
        check_split("query", query, **split, min_examples=min_query)
        if extra is not None:
            extra(support, query.x, query.y)
        check_splits_agree(support, query)

    def init(rng, episode):
        check_key("key", rng, optional=init_key == "optional")
        check_episode(episode)
        params = jitted_init(rng, episode)
        if init_check is not None:
            init_check(params, episode)
        return params

    def loss(params, episode, rng=None):
        check_key("key", rng, optional=key == "optional")
        check_episode(episode)
        return raw_loss(params, episode, rng)

    def predict(params, support, query_x, rng=None):
        check_key("key", rng, optional=key == "optional")
        check_split("support", support, **split, min_examples=min_support)
        if extra is not None:
            extra(support, query_x, None)
        check_features("query_x", query_x, "support", support.x, min_examples=min_query)
        return raw_predict(params, support, query_x, rng)

    # Keep the raw functions' names, so errors and logs name the learner, not this wrapper.
    return Learner(
        init=functools.wraps(raw_init)(init),
        loss=functools.wraps(raw_loss)(loss),
        predict=functools.wraps(raw_predict)(predict),
    )
