"""Model-based learners: a network whose forward pass learns from the support set.

Each learner's registry entry (:mod:`metajax.core.registry`) is below. Their output has
one unit per way, so they test at the ways they trained with; SNAIL's temporal
convolutions are sized by the sequence, so it also keeps its shots.
"""

from __future__ import annotations

import optax

from metajax.core.registry import LearnerSpec, adam, backbone, register
from metajax.learners.model.mann import lstm_baseline, mann
from metajax.learners.model.metanet import meta_networks
from metajax.learners.model.snail import snail
from metajax.nets.backbones import conv4, mlp


def clipped_adam(config) -> optax.GradientTransformation:
    """:func:`~metajax.core.registry.adam` after clipping the global norm at 10.

    Recurrent and fast-weight learners can spike; Munkhdalai & Yu's code clips at 10.
    """
    return optax.chain(optax.clip_by_global_norm(10.0), adam(config))


def _sequence(factory):
    # Santoro et al.'s sequence: every support and query example, labels one step late.
    def build(config, train_pool=None):
        return factory(ways=config["ways"], instances=config["shots"] + config["queries"])

    return build


def _snail(config, train_pool=None):
    kind, kwargs = backbone(config)
    embedding = (conv4 if kind == "conv4" else mlp)(**kwargs)
    return snail(ways=config["ways"], shots=config["shots"], embedding=embedding)


def _metanet(config, train_pool=None):
    blocks = {"conv4": 4, "conv2": 2, "mlp": 0}[config["model"]]
    return meta_networks(ways=config["ways"], blocks=blocks)


_MODEL = dict(fixed_ways=True, optimizer=clipped_adam)
register(LearnerSpec(
    "mann", "model", "Santoro et al., ICML 2016", mann, _sequence(mann), **_MODEL
))  # fmt: skip
register(LearnerSpec(
    "lstm", "model", "Santoro et al., ICML 2016, LSTM baseline", lstm_baseline,
    _sequence(lstm_baseline), **_MODEL,
))  # fmt: skip
register(LearnerSpec(
    "snail", "model", "Mishra, Rohaninejad, Chen & Abbeel, ICLR 2018", snail, _snail,
    fixed_shots=True, **_MODEL,
))  # fmt: skip
register(LearnerSpec(
    "metanet", "model", "Munkhdalai & Yu, ICML 2017", meta_networks, _metanet, **_MODEL
))  # fmt: skip
