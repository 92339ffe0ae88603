"""Metric-based learners: an embedding and a distance to the support set.

Each learner's registry entry (:mod:`metajax.core.registry`) is below: they compare
queries with the support set, so they test at any ways and shots.
"""

from __future__ import annotations

import numpy as np

from metajax.core.registry import LearnerSpec, backbone, register
from metajax.learners.metric.idemenet import idemenet
from metajax.learners.metric.matching import matching_networks
from metajax.learners.metric.protonet import protonet
from metajax.learners.metric.relation import relation_embedding, relation_module, relation_network
from metajax.learners.metric.siamese import siamese
from metajax.learners.metric.tapnet import tapnet
from metajax.nets.backbones import conv4, mlp

# IDeMe-Net's gallery: at most this many meta-train images, one per class first.
GALLERY_SIZE = 2048


def _embedding(config):
    kind, kwargs = backbone(config)
    return (conv4 if kind == "conv4" else mlp)(**kwargs)


def gallery(pool, seed: int, size: int = GALLERY_SIZE) -> np.ndarray:
    """IDeMe-Net's gallery: up to ``size`` meta-train images, spread over the classes.

    Example:
      >>> gallery(np.zeros((3, 4, 2, 2, 1)), seed=0, size=6).shape
      (6, 2, 2, 1)
    """
    rng = np.random.default_rng(seed)
    classes = rng.permutation(pool.shape[0])[:size]
    per_class = max(1, min(pool.shape[1], size // len(classes)))
    examples = np.stack([rng.permutation(pool.shape[1])[:per_class] for _ in classes])
    return np.asarray(pool[classes[:, None], examples]).reshape(-1, *pool.shape[2:])


def _idemenet(config, train_pool=None):
    if train_pool is None or np.ndim(train_pool) != 5:
        raise ValueError(
            "learner idemenet deforms images: it needs a train_pool of meta-train images "
            f"[classes, examples, height, width, channels] (dataset {config['dataset']!r})"
        )
    images = gallery(train_pool, config["seed"])
    return idemenet(
        gallery=images,
        neighbours=min(15, len(images)),
        # Ranking the whole gallery would embed it every step; the benchmark's subset.
        candidates=min(128, len(images)),
        model=_embedding(config),
        # The deformation encoder pools by 2 per block: at most log2 of the image side.
        deformation_blocks=max(1, min(4, int(np.log2(min(train_pool.shape[2:4]))))),
    )


def _relation(config, train_pool=None):
    # Sung et al.'s f keeps spatial maps for g's convolutions; its smaller variants fit
    # the 8x8 digits (conv2) and vectors (mlp, with an MLP relation module).
    if config["model"] == "conv4":
        return relation_network()
    if config["model"] == "conv2":
        return relation_network(relation_embedding(pooled=1), relation_module(blocks=1))
    return relation_network(_embedding(config), relation_module(blocks=0))


def _tapnet(config, train_pool=None):
    # TapNet brings its own encoder (grouped 1-D convolutions and an LSTM), sized by the
    # series; shared attention, since episodes shuffle the labels.
    if "series" not in config:
        raise ValueError("learner tapnet needs config['series'] = {'channels': c, 'length': t}")
    return tapnet(**config["series"], seed=config["seed"])


register(LearnerSpec(
    "protonet", "metric", "Snell, Swersky & Zemel, NeurIPS 2017", protonet,
    lambda config, train_pool=None: protonet(_embedding(config)),
))  # fmt: skip
register(LearnerSpec(
    "matching", "metric", "Vinyals et al., NeurIPS 2016", matching_networks,
    lambda config, train_pool=None: matching_networks(_embedding(config)),
))  # fmt: skip
register(LearnerSpec("relation", "metric", "Sung et al., CVPR 2018", relation_network, _relation))
# Verification pairs from every (support, query) pair of an ordinary episode.
register(LearnerSpec(
    "siamese", "metric", "Koch, Zemel & Salakhutdinov, ICML Deep Learning Workshop 2015",
    siamese, lambda config, train_pool=None: siamese(_embedding(config)),
))  # fmt: skip
register(LearnerSpec(
    "tapnet", "metric", "Zhang, Gao, Lin & Lu, AAAI 2020", tapnet, _tapnet, inputs=("series",)
))  # fmt: skip
register(LearnerSpec(
    "idemenet", "metric", "Chen et al., CVPR 2019", idemenet, _idemenet, inputs=("images",)
))  # fmt: skip
