"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

Each class is represented by the mean embedding of its support examples (its
prototype); a query is classified by a softmax over negative distances to the
prototypes. Training minimises the query cross-entropy end to end through the
embedding network.

Paper defaults (§3.1, Omniglot): Conv-4 embedding with 64 filters, squared
Euclidean distance, Adam with learning rate 1e-3 halved every 2000 episodes, one
episode per update, and more ways at training than at test (60-way training
episodes with 5 queries per class; 1-shot models train 1-shot, 5-shot models 5-shot).
"""

from __future__ import annotations

import jax.numpy as jnp

from metajax.core.distances import DISTANCES, pairwise_distance, prototypes
from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import classification_loss
from metajax.core.validation import check_choice, check_model
from metajax.nets.backbones import Model, conv4


def protonet(model: Model | None = None, *, distance: str = "squared_euclidean") -> Learner:
    """Prototypical Networks (Snell et al. 2017).

    Support and query are embedded in one pass, so the batch norm of the embedding
    uses the episode's statistics (see :mod:`metajax.nets.backbones`).

    Logits have one column per possible label ``0..n_support-1``, since the number
    of ways is not a static property of the arrays; columns of labels absent from
    the support set are ``-inf``, so argmax and softmax ignore them. For a
    standard episode the first ``ways`` columns are the classes.

    Args:
      model: the embedding network; Conv-4 with 64 filters (the paper's) by default.
      distance: ``"squared_euclidean"`` (the paper's, §2.3) or ``"cosine"``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jax.random.uniform(jax.random.key(0), (10, 8, 28, 28, 1))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=5, shots=1, queries=2)
      >>> learner = protonet()
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = learner.loss(params, episode, jax.random.key(3))
      >>> sorted(metrics)
      ['accuracy', 'loss']
    """
    check_model("model", model, optional=True)
    check_choice("distance", distance, DISTANCES)
    model = conv4() if model is None else model

    def init(key, episode: Episode):
        return model.init(key, episode.support.x)

    def predict(params, support: Split, query_x, key=None):
        del key  # Deterministic given the episode.
        n_support = support.x.shape[0]
        embedded = model.apply(params, jnp.concatenate([support.x, query_x]))
        centres, present = prototypes(embedded[:n_support], support.y, n_support)
        logits = -pairwise_distance(embedded[n_support:], centres, distance)
        return jnp.where(present[None, :], logits, -jnp.inf)

    def loss(params, episode: Episode, key=None):
        logits = predict(params, episode.support, episode.query.x, key)
        return classification_loss(logits, episode.query.y)

    return checked(Learner(init=init, loss=loss, predict=predict))
