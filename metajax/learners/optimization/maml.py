"""MAML (Finn, Abbeel & Levine, ICML 2017) and first-order MAML, on the shared inner loop.

The meta-parameters are the network's initial weights. Each task adapts them with a
few gradient steps on its support set (:func:`metajax.learners.optimization.inner_loop.adapt`); the
meta-objective is the query loss at the adapted weights, differentiated through
the inner loop (second order), or with the inner Jacobian dropped (first order).

Paper defaults (§5.2, Omniglot 5-way): Conv-4 with an N-way linear head, inner
learning rate 0.4, one inner step at training and three at test, meta-batch 32,
Adam 1e-3 as the outer optimizer. 20-way Omniglot uses an inner rate of 0.1 and 5
steps, meta-batch 16. Sinusoid regression (§5.1): MLP 40-40, inner rate 0.01, one
step, K = 5 or 10, meta-batch 25.

Batch norm normalises with the current batch's statistics and keeps no running
averages, as in the paper's code: support and query batches each use their own.
"""

from __future__ import annotations

import optax

from metajax.core.learner import Learner, checked
from metajax.core.losses import split_losses
from metajax.core.tracing import adapts_per_task
from metajax.core.validation import (
    check_bool,
    check_float,
    check_int,
    check_model,
    check_optimizer,
)
from metajax.learners.optimization.head import check_model_head
from metajax.learners.optimization.inner_loop import _adapt, _adapted_loss
from metajax.learners.optimization.meta_gradient import FirstOrder, MetaGradient, Unrolled
from metajax.nets.backbones import Model


def check_inner_hyperparameters(
    model: Model,
    *,
    inner_lr: float,
    inner_steps: int,
    test_inner_steps: int,
    inner_optimizer: optax.GradientTransformation | None,
) -> None:
    """The factory checks shared by MAML, FOMAML and iMAML, each argument by its name."""
    check_model("model", model)
    check_float("inner_lr", inner_lr, 0, low_open=True)
    check_int("inner_steps", inner_steps, 1)
    check_int("test_inner_steps", test_inner_steps, 1)
    check_optimizer("inner_optimizer", inner_optimizer)


def gradient_learner(
    name: str,
    model: Model,
    *,
    inner_lr: float,
    inner_steps: int,
    test_inner_steps: int,
    inner_optimizer: optax.GradientTransformation | None,
    proximal: float,
    meta_gradient: MetaGradient,
    test_proximal: float | None = None,
) -> Learner:
    """The learner shared by MAML, FOMAML and iMAML: they differ only in arguments.

    ``test_proximal`` is the proximal strength of ``predict``'s adaptation; ``proximal``
    if None.

    Nothing is checked here: the factories check their hyperparameters, and
    :func:`~metajax.core.learner.checked` the learner's inputs, once. ``name`` is the
    learner's, for the errors of ``init`` (a head that does not fit the episode).
    """
    task_loss, outer_loss = split_losses(model.apply)
    inner = dict(learning_rate=inner_lr, optimizer=inner_optimizer, proximal=proximal)
    test_inner = dict(inner, proximal=proximal if test_proximal is None else test_proximal)

    def init(key, episode):
        return model.init(key, episode.support.x)

    def check_init(params, episode):
        check_model_head(name, model, params, episode)

    def loss(params, episode, key):
        return _adapted_loss(
            task_loss,
            outer_loss,
            params,
            episode,
            key,
            steps=inner_steps,
            meta_gradient=meta_gradient,
            **inner,
        )

    def predict(params, support, query_x, key):
        adapted, _ = _adapt(task_loss, params, support, key, steps=test_inner_steps, **test_inner)
        return model.apply(adapted, query_x)

    learner = Learner(init=init, loss=adapts_per_task(loss), predict=adapts_per_task(predict))
    return checked(learner, labels="any", key="required", init_check=check_init)


def maml(
    model: Model,
    *,
    inner_lr: float = 0.4,
    inner_steps: int = 1,
    test_inner_steps: int = 3,
    inner_optimizer: optax.GradientTransformation | None = None,
    first_order: bool = False,
) -> Learner:
    """MAML with true second-order meta-gradients (``first_order=False``) or FOMAML.

    Args:
      model: the network, with an output per class (e.g. ``conv4(outputs=ways)``) or
        per regression target (e.g. ``mlp(hidden=(40, 40), outputs=1)``).
      inner_lr: inner SGD step size (0.4 for Omniglot 5-way, 0.01 for sinusoids).
      inner_steps: inner steps during meta-training.
      test_inner_steps: inner steps when predicting on a new task.
      inner_optimizer: an optax transformation instead of plain SGD.
      first_order: drop the second-order terms (FOMAML, Finn et al. §5.2); errors
        then name the learner ``fomaml``.

    ``init`` raises a ``ValueError`` naming the learner where the model cannot fit the
    episode: a backbone without a head (``conv4()``), fewer outputs than the
    episode's largest label + 1, or regression outputs shaped unlike the targets.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax import mlp
      >>> from metajax.datasets import sample_sinusoid
      >>> learner = maml(mlp(hidden=(40, 40), outputs=1), inner_lr=0.01)
      >>> episode = sample_sinusoid(jax.random.key(0), shots=10, queries=10)
      >>> params = learner.init(jax.random.key(1), episode)
      >>> grads, metrics = jax.grad(learner.loss, has_aux=True)(params, episode, jax.random.key(2))
      >>> sorted(metrics)
      ['inner_loss_first', 'inner_loss_last', 'loss', 'mse']
    """
    check_inner_hyperparameters(
        model,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        test_inner_steps=test_inner_steps,
        inner_optimizer=inner_optimizer,
    )
    check_bool("first_order", first_order)
    return gradient_learner(
        "fomaml" if first_order else "maml",
        model,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        test_inner_steps=test_inner_steps,
        inner_optimizer=inner_optimizer,
        proximal=0.0,
        meta_gradient=FirstOrder() if first_order else Unrolled(),
    )


def fomaml(model: Model, **hyperparameters) -> Learner:
    """First-order MAML: :func:`maml` with ``first_order=True``.

    The meta-gradient is the query gradient at the adapted weights, the inner loop's
    Jacobian taken as the identity (Finn et al. 2017, §5.2).

    Example:
      >>> import jax, numpy as np
      >>> from metajax import mlp, pool_sampler
      >>> sampler = pool_sampler(np.random.rand(6, 4, 3), ways=2, shots=1, queries=2)
      >>> episode = sampler.sample(jax.random.key(0), sampler.data)
      >>> learner = fomaml(mlp(hidden=(8,), outputs=2), inner_steps=1)
      >>> params = learner.init(jax.random.key(1), episode)
      >>> loss, metrics = learner.loss(params, episode, jax.random.key(2))
      >>> loss.shape, sorted(metrics)[:2]
      ((), ['accuracy', 'inner_loss_first'])
    """
    return maml(model, first_order=True, **hyperparameters)
