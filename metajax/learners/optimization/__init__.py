"""Optimization-based learners: gradient steps on the support set, differentiated through.

Each learner's registry entry (:mod:`metajax.core.registry`) is below, with the
papers' inner-loop defaults. Their network ends in an N-way head (one output on
regression), so they test at the ways they trained with.
"""

from __future__ import annotations

import optax

from metajax.core.registry import (
    ByDataset,
    LearnerSpec,
    SameAs,
    backbone,
    hyperparameters,
    is_regression,
    register,
)
from metajax.learners.optimization.anil import anil
from metajax.learners.optimization.finetune import finetune
from metajax.learners.optimization.imaml import imaml
from metajax.learners.optimization.maml import fomaml, maml
from metajax.learners.optimization.metasgd import metasgd
from metajax.learners.optimization.reptile import reptile
from metajax.nets.backbones import conv4, mlp

# Finn et al. 2017: 0.4 on Omniglot 5-way (§5.2), 0.01 on sinusoids (§5.1).
MAML_INNER_LR = ByDataset(0.4, {"sinusoid": 0.01})
MAML_OPTIONS = {"inner_lr": MAML_INNER_LR, "inner_steps": 1, "test_inner_steps": 3}


def annealed_sgd(config) -> optax.GradientTransformation:
    """Nichol et al.'s outer step: SGD at rate epsilon (``lr``), annealed linearly to 0."""
    return optax.sgd(optax.linear_schedule(config["lr"], 0.0, config["steps"]))


def _network(config, *, head: bool = True):
    kind, kwargs = backbone(config)
    outputs = (1 if is_regression(config) else config["ways"]) if head else None
    return (conv4 if kind == "conv4" else mlp)(outputs=outputs, **kwargs)


def _head_learner(factory):
    def build(config, train_pool=None):
        return factory(_network(config), **hyperparameters(config))

    return build


def _anil(config, train_pool=None):
    # ANIL's head is its own: the body ends at the features.
    outputs = 1 if is_regression(config) else config["ways"]
    return anil(_network(config, head=False), outputs=outputs, **hyperparameters(config))


_HEAD = dict(fixed_ways=True, regression=True)
register(LearnerSpec(
    "maml", "optimization", "Finn, Abbeel & Levine, ICML 2017", maml, _head_learner(maml),
    options=MAML_OPTIONS, **_HEAD,
))  # fmt: skip
register(LearnerSpec(
    "fomaml", "optimization", "Finn, Abbeel & Levine, ICML 2017, first order", fomaml,
    _head_learner(fomaml), options=MAML_OPTIONS, **_HEAD,
))  # fmt: skip
# Rajeswaran et al.'s Omniglot setting: lambda 2, 16 steps of iMAML-GD, 5 of CG.
register(LearnerSpec(
    "imaml", "optimization", "Rajeswaran, Finn, Kakade & Levine, NeurIPS 2019", imaml,
    _head_learner(imaml), options={
        "inner_lr": ByDataset(0.1, {"sinusoid": 0.01}), "inner_steps": 16,
        "test_inner_steps": SameAs("inner_steps"), "proximal": 2.0, "cg_steps": 5,
    }, **_HEAD,
))  # fmt: skip
# Nichol et al., Table 3 (Omniglot): inner Adam 1e-3, 5 steps at training, 50 at test.
register(LearnerSpec(
    "reptile", "optimization", "Nichol, Achiam & Schulman, arXiv 2018", reptile,
    _head_learner(reptile), options={"inner_steps": 5, "test_inner_steps": 50},
    lr=1.0, optimizer=annealed_sgd, **_HEAD,
))  # fmt: skip
register(LearnerSpec(
    "metasgd", "optimization", "Li, Zhou, Chen & Li, arXiv 2017", metasgd,
    _head_learner(metasgd), options={"inner_steps": 1, "test_inner_steps": 1}, **_HEAD,
))  # fmt: skip
register(LearnerSpec(
    "anil", "optimization", "Raghu, Raghu, Bengio & Vinyals, ICLR 2020", anil, _anil,
    options=MAML_OPTIONS, **_HEAD,
))  # fmt: skip
# Finn et al.'s "pretrained" baseline (Fig. 2): fine-tuned by SGD at 0.01.
register(LearnerSpec(
    "finetune", "optimization", "Finn, Abbeel & Levine, ICML 2017, pretrained baseline",
    finetune, _head_learner(finetune), options={"inner_lr": 0.01, "test_inner_steps": 1},
    **_HEAD,
))  # fmt: skip
