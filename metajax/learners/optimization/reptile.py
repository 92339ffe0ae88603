"""Reptile (Nichol, Achiam & Schulman 2018) on the shared inner loop.

Reptile adapts to a task with a few steps of an ordinary optimizer and moves the
meta-parameters towards the result: ``theta <- theta + epsilon (phi - theta)``. In
metajax's one trainer that is a loss whose gradient is ``theta - phi``, namely
``0.5 ||theta - stop_gradient(phi)||^2``, with SGD at rate ``epsilon`` as the outer
optimizer (Nichol et al. anneal epsilon linearly from 1 to 0: ``optax.linear_schedule``).

Paper defaults (Table 3, Omniglot): inner Adam with learning rate 1e-3 and
``b1 = 0``, 5 inner steps at training, 50 at test, meta-batch 5.
"""

from __future__ import annotations

import jax
import optax

from metajax.core.learner import Learner, checked
from metajax.core.losses import split_losses
from metajax.core.tracing import adapts_per_task
from metajax.core.validation import check_int, check_model, check_optimizer
from metajax.learners.optimization.head import check_model_head
from metajax.learners.optimization.inner_loop import _adapt
from metajax.learners.optimization.linalg import squared_distance
from metajax.nets.backbones import Model


def reptile(
    model: Model,
    *,
    inner_optimizer: optax.GradientTransformation | None = None,
    inner_steps: int = 5,
    test_inner_steps: int = 50,
) -> Learner:
    """Reptile.

    Args:
      model: the network with an output head (e.g. ``conv4(outputs=ways)``).
      inner_optimizer: the task optimizer; ``optax.adam(1e-3, b1=0.0)`` by default.
      inner_steps: inner steps at training.
      test_inner_steps: inner steps when predicting on a new task.

    The metrics report the query loss and accuracy (or MSE) after adaptation and
    ``distance``, the squared distance ``||phi - theta||^2`` moved by the task.

    Example:
      >>> import jax
      >>> from metajax import mlp
      >>> from metajax.datasets import sample_sinusoid
      >>> learner = reptile(mlp(hidden=(40, 40), outputs=1))
      >>> episode = sample_sinusoid(jax.random.key(0), shots=10, queries=10)
      >>> params = learner.init(jax.random.key(1), episode)
      >>> _, metrics = learner.loss(params, episode, jax.random.key(2))
      >>> sorted(metrics)
      ['distance', 'loss', 'mse']
    """
    check_model("model", model)
    check_int("inner_steps", inner_steps, 1)
    check_int("test_inner_steps", test_inner_steps, 1)
    check_optimizer("inner_optimizer", inner_optimizer)
    inner_optimizer = optax.adam(1e-3, b1=0.0) if inner_optimizer is None else inner_optimizer

    task_loss, outer_loss = split_losses(model.apply)

    def init(key, episode):
        return model.init(key, episode.support.x)

    def check_init(params, episode):
        check_model_head("reptile", model, params, episode)

    def loss(params, episode, key):
        # Independent keys for the inner loop and the outer loss (the metrics' scorer).
        inner_key, outer_key = jax.random.split(key)
        phi, _ = _adapt(
            task_loss,
            params,
            episode.support,
            inner_key,
            steps=inner_steps,
            optimizer=inner_optimizer,
        )
        phi = jax.lax.stop_gradient(phi)
        distance = squared_distance(params, phi)
        _, metrics = outer_loss(phi, episode.query, outer_key)
        return 0.5 * distance, {**metrics, "distance": distance}

    def predict(params, support, query_x, key):
        phi, _ = _adapt(
            task_loss, params, support, key, steps=test_inner_steps, optimizer=inner_optimizer
        )
        return model.apply(phi, query_x)

    learner = Learner(init=init, loss=adapts_per_task(loss), predict=adapts_per_task(predict))
    return checked(learner, labels="any", key="required", init_check=check_init)
