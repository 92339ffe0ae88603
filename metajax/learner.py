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

from metajax.episodes import Episode, Split

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
