"""The pretrain-and-fine-tune baseline of Finn et al. 2017 (Fig. 2, "pretrained").

Meta-training fits one network to all tasks jointly (plain supervised learning on
every task's support and query points, no adaptation); at test the network is
fine-tuned on the new task's support set with a few SGD steps. It is the baseline
that MAML's few-step adaptation is measured against.
"""

from __future__ import annotations

import jax.numpy as jnp

from metajax.core.learner import Learner, checked
from metajax.core.losses import split_losses, supervised_loss
from metajax.core.tracing import adapts_per_task
from metajax.core.validation import check_float, check_int, check_key, check_model
from metajax.learners.optimization.head import check_model_head
from metajax.learners.optimization.inner_loop import _adapt
from metajax.nets.backbones import Model


def finetune(model: Model, *, inner_lr: float = 0.01, test_inner_steps: int = 1) -> Learner:
    """Joint pretraining with fine-tuning at test; ``test_inner_steps=0`` predicts unadapted.

    Example:
      >>> import jax
      >>> from metajax import mlp
      >>> from metajax.datasets import sample_sinusoid
      >>> learner = finetune(mlp(hidden=(40, 40), outputs=1), test_inner_steps=10)
      >>> episode = sample_sinusoid(jax.random.key(0), shots=10, queries=10)
      >>> params = learner.init(jax.random.key(1), episode)
      >>> learner.predict(params, episode.support, episode.query.x, jax.random.key(2)).shape
      (10, 1)
    """
    check_model("model", model)
    check_float("inner_lr", inner_lr, 0, low_open=True)
    check_int("test_inner_steps", test_inner_steps, 0)

    task_loss, _ = split_losses(model.apply)

    def init(key, episode):
        return model.init(key, episode.support.x)

    def check_init(params, episode):
        check_model_head("finetune", model, params, episode)

    def loss(params, episode, key):
        del key  # Joint supervised training is deterministic.
        x = jnp.concatenate([episode.support.x, episode.query.x])
        y = jnp.concatenate([episode.support.y, episode.query.y])
        return supervised_loss(model.apply(params, x), y)

    def predict(params, support, query_x, key):
        if test_inner_steps:
            # The wrapper lets None through for loss and the unadapted predict; adapting
            # needs a key.
            check_key("key", key)
            params, _ = _adapt(
                task_loss, params, support, key, steps=test_inner_steps, learning_rate=inner_lr
            )
        return model.apply(params, query_x)

    # Joint training needs no key; predict needs one only to adapt (checked there).
    learner = Learner(init=init, loss=adapts_per_task(loss), predict=adapts_per_task(predict))
    return checked(learner, labels="any", key="optional", init_check=check_init)
