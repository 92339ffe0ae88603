"""ANIL (Raghu, Raghu, Bengio & Vinyals, ICLR 2020): almost no inner loop.

Only the final linear head adapts to each task; the body's features are computed
once per episode and shared by every inner step, which makes the inner loop cheap.
The meta-gradient still reaches the body, through the features of the support
(second order, through the head's adaptation) and of the query.

Defaults are MAML's (the paper reuses them): for Omniglot 5-way an inner rate of
0.4, one step at training and three at test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import split_losses
from metajax.core.validation import check_bool, check_float, check_int, check_model
from metajax.learners.optimization.head import check_head
from metajax.learners.optimization.inner_loop import _adapt, _adapted_loss
from metajax.learners.optimization.meta_gradient import FirstOrder, Unrolled
from metajax.nets.backbones import Model


def anil(
    body: Model,
    *,
    outputs: int,
    inner_lr: float = 0.4,
    inner_steps: int = 1,
    test_inner_steps: int = 3,
    first_order: bool = False,
) -> Learner:
    """ANIL: MAML on the linear head only.

    Args:
      body: the feature extractor without a head (e.g. ``conv4()``).
      outputs: head width: the number of ways, or regression outputs.
      inner_lr: inner SGD step size.
      inner_steps: inner steps at training.
      test_inner_steps: inner steps when predicting.
      first_order: drop the second-order terms.

    Parameters are ``{"body": ..., "head": {"kernel", "bias"}}``.

    Example:
      >>> import jax
      >>> from metajax import mlp
      >>> from metajax.datasets import sample_sinusoid
      >>> learner = anil(mlp(hidden=(40, 40)), outputs=1, inner_lr=0.01)
      >>> episode = sample_sinusoid(jax.random.key(0), shots=10, queries=10)
      >>> params = learner.init(jax.random.key(1), episode)
      >>> learner.predict(params, episode.support, episode.query.x, jax.random.key(2)).shape
      (10, 1)
    """
    check_model("body", body)
    check_int("outputs", outputs, 1)
    check_float("inner_lr", inner_lr, 0, low_open=True)
    check_int("inner_steps", inner_steps, 1)
    check_int("test_inner_steps", test_inner_steps, 1)
    check_bool("first_order", first_order)

    def head_apply(head, features):
        return features @ head["kernel"] + head["bias"]

    task_loss, outer_loss = split_losses(head_apply)
    meta_gradient = FirstOrder() if first_order else Unrolled()

    def init(key, episode):
        body_key, head_key = jax.random.split(key)
        body_params = body.init(body_key, episode.support.x)
        features = body.apply(body_params, episode.support.x[:1]).shape[-1]
        kernel = jax.nn.initializers.lecun_normal()(head_key, (features, outputs))
        return {"body": body_params, "head": {"kernel": kernel, "bias": jnp.zeros(outputs)}}

    def embed(params, support_x, query_x):
        n = support_x.shape[0]
        # One pass over support and query: the head-only inner loop needs no more.
        both = body.apply(params["body"], jnp.concatenate([support_x, query_x]))
        return both[:n], both[n:]

    def loss(params, episode, key):
        support, query = embed(params, episode.support.x, episode.query.x)
        features = Episode(Split(support, episode.support.y), Split(query, episode.query.y))
        return _adapted_loss(
            task_loss,
            outer_loss,
            params["head"],
            features,
            key,
            steps=inner_steps,
            learning_rate=inner_lr,
            meta_gradient=meta_gradient,
        )

    def predict(params, support, query_x, key):
        support_features, query_features = embed(params, support.x, query_x)
        head, _ = _adapt(
            task_loss,
            params["head"],
            Split(support_features, support.y),
            key,
            steps=test_inner_steps,
            learning_rate=inner_lr,
        )
        return head_apply(head, query_features)

    def check_init(params, episode):
        del params  # the head's width is the factory's outputs=
        check_head("anil", (episode.support.x.shape[0], outputs), episode, declared=outputs)

    learner = Learner(init=init, loss=loss, predict=predict)
    return checked(learner, labels="any", key="required", init_check=check_init)
