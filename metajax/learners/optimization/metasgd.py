"""Meta-SGD (Li, Zhou, Chen & Li 2017): MAML with learned per-parameter inner learning rates.

The meta-parameters are the initial weights ``theta`` and a learning rate ``alpha``
of the same shape; the inner step is ``theta - alpha * grad`` (an elementwise
product), and both are meta-learned through the unrolled inner loop.

Paper defaults (§4, classification): one inner step, ``alpha`` initialised
uniformly in [0.005, 0.1].
"""

from __future__ import annotations

import jax

from metajax.core.learner import Learner, checked
from metajax.core.losses import split_losses
from metajax.core.tracing import adapts_per_task
from metajax.core.validation import check_bool, check_float, check_int, check_model
from metajax.learners.optimization.head import check_model_head
from metajax.learners.optimization.inner_loop import _adapt, _adapted_loss
from metajax.learners.optimization.meta_gradient import FirstOrder, Unrolled
from metajax.nets.backbones import Model


def metasgd(
    model: Model,
    *,
    inner_steps: int = 1,
    test_inner_steps: int = 1,
    lr_init: tuple[float, float] = (0.005, 0.1),
    first_order: bool = False,
) -> Learner:
    """Meta-SGD.

    Args:
      model: the network with an output head.
      inner_steps: inner steps at training.
      test_inner_steps: inner steps when predicting.
      lr_init: ``(low, high)`` of the uniform initialisation of ``alpha``.
      first_order: drop second-order terms for ``theta`` (``alpha`` then gets no
        gradient, so keep this False to learn the rates).

    Parameters are ``{"model": theta, "inner_lr": alpha}``.

    Example:
      >>> import jax
      >>> from metajax import mlp
      >>> from metajax.datasets import sample_sinusoid
      >>> learner = metasgd(mlp(hidden=(40, 40), outputs=1))
      >>> episode = sample_sinusoid(jax.random.key(0), shots=10, queries=10)
      >>> params = learner.init(jax.random.key(1), episode)
      >>> grads, _ = jax.grad(learner.loss, has_aux=True)(params, episode, jax.random.key(2))
      >>> sorted(grads)
      ['inner_lr', 'model']
    """
    check_model("model", model)
    check_int("inner_steps", inner_steps, 1)
    check_int("test_inner_steps", test_inner_steps, 1)
    check_bool("first_order", first_order)
    pair = tuple(lr_init) if isinstance(lr_init, tuple | list) else ()
    if len(pair) != 2:
        raise ValueError(f"lr_init must be (low, high) with 0 < low <= high, got {lr_init!r}")
    low, high = pair
    check_float("lr_init low", low, 0, low_open=True, why=" (lr_init must be (low, high))")
    check_float("lr_init high", high, low, why=" (lr_init must be (low, high), high >= low)")

    task_loss, outer_loss = split_losses(model.apply)
    meta_gradient = FirstOrder() if first_order else Unrolled()

    def init(key, episode):
        model_key, lr_key = jax.random.split(key)
        theta = model.init(model_key, episode.support.x)
        leaves, treedef = jax.tree.flatten(theta)
        keys = jax.random.split(lr_key, len(leaves))
        rates = [
            jax.random.uniform(k, x.shape, x.dtype, low, high)
            for k, x in zip(keys, leaves, strict=True)
        ]
        return {"model": theta, "inner_lr": jax.tree.unflatten(treedef, rates)}

    def loss(params, episode, key):
        return _adapted_loss(
            task_loss,
            outer_loss,
            params["model"],
            episode,
            key,
            steps=inner_steps,
            learning_rate=params["inner_lr"],
            meta_gradient=meta_gradient,
        )

    def predict(params, support, query_x, key):
        phi, _ = _adapt(
            task_loss,
            params["model"],
            support,
            key,
            steps=test_inner_steps,
            learning_rate=params["inner_lr"],
        )
        return model.apply(phi, query_x)

    def check_init(params, episode):
        check_model_head("metasgd", model, params["model"], episode)

    learner = Learner(init=init, loss=adapts_per_task(loss), predict=adapts_per_task(predict))
    return checked(learner, labels="any", key="required", init_check=check_init)
