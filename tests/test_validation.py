"""Every public entry point refuses bad input with a ``ValueError`` that names the argument.

One table holds, for every callable of ``metajax.__all__``, at least one bad value per
checked argument, and the message each must give. The learners' ``init``/``loss``/
``predict`` are also called on malformed episodes under ``jax.eval_shape``: their
checks read static shapes and dtypes only, so they must fire while tracing (jit-safe),
before anything is computed.
"""

from __future__ import annotations

import inspect
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import metajax
from metajax import (
    AffineDistortion,
    Episode,
    Implicit,
    Split,
    adapt,
    adapted_loss,
    anil,
    checkpoint_manager,
    compiler_options,
    conv4,
    episode_sequence,
    evaluate,
    finetune,
    fomaml,
    idemenet,
    imaml,
    init_state,
    is_transductive,
    lstm_baseline,
    make_evaluator,
    make_train_step,
    maml,
    mann,
    matching_networks,
    mean_ci95,
    meta_networks,
    meta_train,
    metasgd,
    mlp,
    pair_sampler,
    pool_sampler,
    protonet,
    relation_network,
    replicate,
    reptile,
    restore_state,
    sample_batch,
    sample_episode,
    save_state,
    siamese,
    snail,
    tapnet,
    task_mesh,
)
from metajax.learners.metric.relation import relation_module

# Public names that are types or modules, not entry points taking arguments to check.
NOT_ENTRY_POINTS = {
    "AffineDistortion",
    "Episode",
    "EpisodeSampler",
    "Evaluation",
    "FirstOrder",
    "Implicit",
    "Learner",
    "MemoryState",
    "Model",
    "Sequence",
    "Split",
    "TrainState",
    "Unrolled",
    "datasets",
    "distributed",
    "NonFiniteError",
    "per_task_weights",  # a context manager without arguments
}

KEY = jax.random.key(0)
WAYS, SHOTS, QUERIES = 3, 2, 2


def vector_pool():
    return np.asarray(jax.random.uniform(jax.random.key(1), (8, 6, 5)))


def vector_episode() -> Episode:
    return sample_episode(jax.random.key(2), vector_pool(), ways=WAYS, shots=SHOTS, queries=QUERIES)


def image_pool():
    return np.asarray(jax.random.uniform(jax.random.key(3), (8, 6, 8, 8, 1)))


def image_episode() -> Episode:
    return sample_episode(jax.random.key(4), image_pool(), ways=WAYS, shots=SHOTS, queries=QUERIES)


def series_episode() -> Episode:
    """Masked series ``[n, 16, 3 + 1]``, the layout TapNet reads."""
    pool = np.ones((8, 6, 16, 4), np.float32)
    pool[..., :3] = np.asarray(jax.random.normal(jax.random.key(5), (8, 6, 16, 3)))
    return sample_episode(jax.random.key(6), pool, ways=WAYS, shots=SHOTS, queries=QUERIES)


def linear_loss(w, split, key):
    del key
    return jnp.mean((split.x @ w - split.y) ** 2)


def linear_outer(w, split, key):
    value = linear_loss(w, split, key)
    return value, {"loss": value}


def regression_episode() -> Episode:
    x = jax.random.normal(jax.random.key(7), (8, 3))
    y = x @ jnp.array([1.0, -1.0, 0.5])
    return Episode(Split(x[:4], y[:4]), Split(x[4:], y[4:]))


# name -> (factory of a small learner, factory of a valid episode for it).
LEARNERS = {
    "protonet": (lambda: protonet(mlp(hidden=(8,))), vector_episode),
    "matching_networks": (lambda: matching_networks(mlp(hidden=(8,))), vector_episode),
    "siamese": (lambda: siamese(mlp(hidden=(8,))), vector_episode),
    "relation_network": (
        lambda: relation_network(mlp(hidden=(8,)), relation_module(blocks=0, hidden=4)),
        vector_episode,
    ),
    "tapnet": (
        lambda: tapnet(
            channels=3,
            length=16,
            filters=(4, 4, 4),
            lstm_units=4,
            mapping=(8, 4),
            attention_units=4,
        ),
        series_episode,
    ),
    "maml": (lambda: maml(mlp(hidden=(8,), outputs=WAYS)), vector_episode),
    "fomaml": (lambda: fomaml(mlp(hidden=(8,), outputs=WAYS)), vector_episode),
    "imaml": (lambda: imaml(mlp(hidden=(8,), outputs=WAYS), inner_steps=2), vector_episode),
    "reptile": (lambda: reptile(mlp(hidden=(8,), outputs=WAYS)), vector_episode),
    "metasgd": (lambda: metasgd(mlp(hidden=(8,), outputs=WAYS)), vector_episode),
    "anil": (lambda: anil(mlp(hidden=(8,)), outputs=WAYS), vector_episode),
    "finetune": (lambda: finetune(mlp(hidden=(8,), outputs=WAYS)), vector_episode),
    "mann": (
        lambda: mann(
            ways=WAYS, instances=SHOTS + QUERIES, memory_slots=8, memory_size=4, controller=8
        ),
        vector_episode,
    ),
    "lstm_baseline": (
        lambda: lstm_baseline(ways=WAYS, instances=SHOTS + QUERIES, hidden=8),
        vector_episode,
    ),
    "snail": (
        lambda: snail(
            ways=WAYS,
            shots=SHOTS,
            embedding=mlp(hidden=(8,)),
            filters=4,
            attention=((4, 2), (4, 2)),
        ),
        vector_episode,
    ),
    "meta_networks": (lambda: meta_networks(ways=WAYS, blocks=0, hidden=(8,)), vector_episode),
    "idemenet": (
        lambda: idemenet(
            gallery=image_pool()[:, 0],
            model=mlp(hidden=(8,)),
            generated=2,
            neighbours=2,
            deformation_filters=4,
            deformation_blocks=1,
        ),
        image_episode,
    ),
}


def with_support(episode: Episode, **fields) -> Episode:
    return episode._replace(support=episode.support._replace(**fields))


def with_query(episode: Episode, **fields) -> Episode:
    return episode._replace(query=episode.query._replace(**fields))


# Malformed inputs every learner refuses, as (function, what is wrong, match). Each
# builder gets (learner, params, episode) and returns the thunk to call.
LEARNER_CASES = [
    ("init", "key is None", r"key must be a PRNG key", lambda lrn, p, ep: (lrn.init, None, ep)),
    (
        "init",
        "integer inputs",
        r"support\.x must have a floating-point dtype",
        lambda lrn, p, ep: (lrn.init, KEY, with_support(ep, x=ep.support.x.astype(jnp.int32))),
    ),
    (
        "loss",
        "query x and y of different lengths",
        r"query\.x and query\.y disagree on n",
        lambda lrn, p, ep: (lrn.loss, p, with_query(ep, y=ep.query.y[:-1]), KEY),
    ),
    (
        "loss",
        "support labels of rank 2",
        r"support\.y must be integer labels of shape \[n\]",
        lambda lrn, p, ep: (lrn.loss, p, with_support(ep, y=ep.support.y[:, None]), KEY),
    ),
    (
        "predict",
        "query_x with other features than the support's",
        r"query_x (features|must be)",
        lambda lrn, p, ep: (lrn.predict, p, ep.support, ep.query.x[..., :-1], KEY),
    ),
    (
        "predict",
        "support x and y of different lengths",
        r"support\.x and support\.y disagree on n",
        lambda lrn, p, ep: (
            lrn.predict,
            p,
            ep.support._replace(y=ep.support.y[:-1]),
            ep.query.x,
            KEY,
        ),
    ),
]


@pytest.fixture(scope="module")
def learners():
    """Each small learner with abstract parameters (``eval_shape``: nothing is computed)."""
    out = {}
    for name, (make, make_episode) in LEARNERS.items():
        learner, episode = make(), make_episode()
        out[name] = learner, jax.eval_shape(learner.init, KEY, episode), episode
    return out


@pytest.mark.parametrize(
    "learner_name, case",
    [(name, case) for name in LEARNERS for case in LEARNER_CASES],
    ids=[f"{name}.{case[0]}: {case[1]}" for name in LEARNERS for case in LEARNER_CASES],
)
def test_learner_functions_refuse_malformed_episodes_while_tracing(learners, learner_name, case):
    _, _, match, build = case
    learner, params, episode = learners[learner_name]
    fn, *args = build(learner, params, episode)
    with pytest.raises(ValueError, match=match):
        # Under eval_shape the arrays are tracers: the checks must be static to fire.
        jax.eval_shape(fn, *args)


def sampler():
    return pool_sampler(vector_pool(), ways=WAYS, shots=SHOTS, queries=QUERIES)


LEARNER = protonet(mlp(hidden=(8,)))
OPTIMIZER = optax.sgd(1e-2)
REG = regression_episode()
IDEME = dict(gallery=np.zeros((20, 8, 8, 1)), deformation_blocks=1)


class FourDevices:
    """Stands in for a 4-device mesh: only its size is read before the error."""

    size = 4


def case(api, argument, call, match=None, *, xfail: str | None = None):
    """One row: calling ``call()`` must raise a ``ValueError`` matching ``match``.

    ``match`` defaults to the argument's name as a whole word.
    """
    marks = [pytest.mark.xfail(reason=xfail, strict=True)] if xfail else []
    match = rf"(?<![\w.]){re.escape(argument)}(?!\w)" if match is None else match
    return pytest.param(api, argument, call, match, marks=marks, id=f"{api}:{argument}")


BAD_INPUTS = [
    # Metric-based learners.
    case("protonet", "model", lambda: protonet("conv4")),
    case("protonet", "distance", lambda: protonet(distance="l1"), r"distance must be one of"),
    case("matching_networks", "model", lambda: matching_networks(model=1)),
    case("matching_networks", "fce", lambda: matching_networks(fce="yes")),
    case("matching_networks", "read_steps", lambda: matching_networks(read_steps=0)),
    case("matching_networks", "distance", lambda: matching_networks(distance="l2")),
    case("matching_networks", "scale", lambda: matching_networks(scale=0.0), r"scale .*> 0"),
    case("matching_networks", "scale", lambda: matching_networks(scale=math.inf), r"finite"),
    case("siamese", "model", lambda: siamese(model=object())),
    case("siamese", "pairing", lambda: siamese(pairing="pairs")),
    case("siamese", "objective", lambda: siamese(objective="triplet")),
    case("siamese", "distortion", lambda: siamese(distortion="koch")),
    case("siamese", "distortion.p", lambda: siamese(distortion=AffineDistortion(p=1.5))),
    case("siamese", "distortion.scale", lambda: siamese(distortion=AffineDistortion(scale=1.0))),
    case(
        "siamese",
        "distortion.rotation",
        lambda: siamese(distortion=AffineDistortion(rotation=-5.0)),
    ),
    case("pair_sampler", "pool", lambda: pair_sampler(np.zeros(4)), r"pool must have rank >= 2"),
    case("pair_sampler", "pairs", lambda: pair_sampler(np.zeros((30, 2, 1)), pairs=1)),
    case("pair_sampler", "pairs", lambda: pair_sampler(np.zeros((30, 2, 1)), pairs=3), "even"),
    case("pair_sampler", "pairs", lambda: pair_sampler(np.zeros((6, 2, 1)), pairs=8), "pairs=8"),
    case("relation_network", "model", lambda: relation_network(model=3)),
    case("relation_network", "relation", lambda: relation_network(relation="g")),
    case("relation_network", "ways", lambda: relation_network(ways=0)),
    case("tapnet", "channels", lambda: tapnet(channels=0, length=8)),
    case("tapnet", "length", lambda: tapnet(channels=3, length=0)),
    case("tapnet", "groups", lambda: tapnet(channels=3, length=8, groups=0)),
    case("tapnet", "group_channels", lambda: tapnet(channels=3, length=8, group_channels=4)),
    case("tapnet", "filters", lambda: tapnet(channels=3, length=8, filters=(8, 0, 4))),
    case("tapnet", "kernels", lambda: tapnet(channels=3, length=8, kernels=())),
    case("tapnet", "kernels", lambda: tapnet(channels=3, length=8, kernels=(3,)), "equally long"),
    case("tapnet", "mapping", lambda: tapnet(channels=3, length=8, mapping=(8, -1))),
    case("tapnet", "dilation", lambda: tapnet(channels=3, length=8, dilation=0)),
    case("tapnet", "lstm_units", lambda: tapnet(channels=3, length=8, lstm_units=0)),
    case("tapnet", "attention_units", lambda: tapnet(channels=3, length=8, attention_units=0)),
    case("tapnet", "classes", lambda: tapnet(channels=3, length=8, classes=0)),
    case("tapnet", "separation", lambda: tapnet(channels=3, length=8, separation=-1.0)),
    case("tapnet", "seed", lambda: tapnet(channels=3, length=8, seed=-1)),
    # Optimization-based learners.
    case("maml", "model", lambda: maml(None)),
    case("maml", "inner_lr", lambda: maml(mlp(outputs=1), inner_lr=0.0), r"inner_lr .*> 0"),
    case("maml", "inner_lr", lambda: maml(mlp(outputs=1), inner_lr=math.nan), r"inner_lr"),
    case("maml", "inner_steps", lambda: maml(mlp(outputs=1), inner_steps=0)),
    case("maml", "test_inner_steps", lambda: maml(mlp(outputs=1), test_inner_steps=1.5)),
    case("maml", "inner_optimizer", lambda: maml(mlp(outputs=1), inner_optimizer="adam")),
    case("maml", "first_order", lambda: maml(mlp(outputs=1), first_order=1)),
    case("fomaml", "inner_lr", lambda: fomaml(mlp(outputs=1), inner_lr=-0.1)),
    case("fomaml", "inner_steps", lambda: fomaml(mlp(outputs=1), inner_steps=0)),
    case("imaml", "proximal", lambda: imaml(mlp(outputs=1), proximal=0.0), r"proximal \(lambda\)"),
    case("imaml", "inner_lr", lambda: imaml(mlp(outputs=1), inner_lr=-1.0)),
    case("imaml", "inner_steps", lambda: imaml(mlp(outputs=1), inner_steps=0)),
    case("imaml", "test_inner_steps", lambda: imaml(mlp(outputs=1), test_inner_steps=0)),
    case("imaml", "cg_steps", lambda: imaml(mlp(outputs=1), cg_steps=0)),
    case("imaml", "damping", lambda: imaml(mlp(outputs=1), damping=-1.0)),
    case("imaml", "lambda_damping", lambda: imaml(mlp(outputs=1), lambda_damping=math.inf)),
    case("imaml", "cg_tolerance", lambda: imaml(mlp(outputs=1), cg_tolerance=0.0)),
    case("reptile", "model", lambda: reptile("mlp")),
    case("reptile", "inner_optimizer", lambda: reptile(mlp(outputs=1), inner_optimizer=1e-3)),
    case("reptile", "inner_steps", lambda: reptile(mlp(outputs=1), inner_steps=0)),
    case("reptile", "test_inner_steps", lambda: reptile(mlp(outputs=1), test_inner_steps=0)),
    case("metasgd", "model", lambda: metasgd(None)),
    case("metasgd", "inner_steps", lambda: metasgd(mlp(outputs=1), inner_steps=0)),
    case("metasgd", "test_inner_steps", lambda: metasgd(mlp(outputs=1), test_inner_steps=0)),
    case("metasgd", "lr_init", lambda: metasgd(mlp(outputs=1), lr_init=(0.1, 0.01))),
    case("metasgd", "lr_init", lambda: metasgd(mlp(outputs=1), lr_init=0.1)),
    case("metasgd", "lr_init", lambda: metasgd(mlp(outputs=1), lr_init=(0.0, 0.1))),
    case("metasgd", "first_order", lambda: metasgd(mlp(outputs=1), first_order="no")),
    case("anil", "body", lambda: anil(None, outputs=1)),
    case("anil", "outputs", lambda: anil(mlp(), outputs=0)),
    case("anil", "inner_lr", lambda: anil(mlp(), outputs=1, inner_lr=0)),
    case("anil", "inner_steps", lambda: anil(mlp(), outputs=1, inner_steps=0)),
    case("anil", "test_inner_steps", lambda: anil(mlp(), outputs=1, test_inner_steps=0)),
    case("anil", "first_order", lambda: anil(mlp(), outputs=1, first_order=None)),
    case("finetune", "model", lambda: finetune(None)),
    case("finetune", "inner_lr", lambda: finetune(mlp(outputs=1), inner_lr=-1e-3)),
    case("finetune", "test_inner_steps", lambda: finetune(mlp(outputs=1), test_inner_steps=-1)),
    # The shared inner loop.
    case("adapt", "task_loss", lambda: adapt(None, jnp.zeros(3), REG.support, KEY, steps=1)),
    case(
        "adapt",
        "steps",
        lambda: adapt(linear_loss, jnp.zeros(3), REG.support, KEY, steps=0),
        r"inner steps must be an integer >= 1",
    ),
    case(
        "adapt",
        "learning_rate",
        lambda: adapt(linear_loss, jnp.zeros(3), REG.support, KEY, steps=1, learning_rate=-1.0),
    ),
    case(
        "adapt",
        "optimizer",
        lambda: adapt(linear_loss, jnp.zeros(3), REG.support, KEY, steps=1, optimizer="sgd"),
    ),
    case(
        "adapt",
        "proximal",
        lambda: adapt(linear_loss, jnp.zeros(3), REG.support, KEY, steps=1, proximal=-1.0),
        r"proximal \(lambda\) must be a number >= 0",
    ),
    case(
        "adapt",
        "support",
        lambda: adapt(linear_loss, jnp.zeros(3), Split(jnp.zeros(4), REG.support.y), KEY, steps=1),
        r"support\.x must have rank >= 2",
    ),
    case("adapt", "key", lambda: adapt(linear_loss, jnp.zeros(3), REG.support, None, steps=1)),
    case(
        "adapted_loss",
        "outer_loss",
        lambda: adapted_loss(linear_loss, None, jnp.zeros(3), REG, KEY, steps=1),
    ),
    case(
        "adapted_loss",
        "steps",
        lambda: adapted_loss(linear_loss, linear_outer, jnp.zeros(3), REG, KEY, steps=0),
        r"inner steps must be an integer >= 1",
    ),
    case(
        "adapted_loss",
        "learning_rate",
        lambda: adapted_loss(
            linear_loss, linear_outer, jnp.zeros(3), REG, KEY, steps=1, learning_rate=math.inf
        ),
    ),
    case(
        "adapted_loss",
        "episode",
        lambda: adapted_loss(
            linear_loss,
            linear_outer,
            jnp.zeros(3),
            REG._replace(query=REG.query._replace(x=REG.query.x[:, :2])),
            KEY,
            steps=1,
        ),
        r"query\.x features",
    ),
    case(
        "adapted_loss",
        "meta_gradient",
        lambda: adapted_loss(
            linear_loss, linear_outer, jnp.zeros(3), REG, KEY, steps=1, meta_gradient="implicit"
        ),
    ),
    case(
        "adapted_loss",
        "proximal",
        lambda: adapted_loss(
            linear_loss, linear_outer, jnp.zeros(3), REG, KEY, steps=1, meta_gradient=Implicit()
        ),
        r"proximal \(lambda\) > 0",
    ),
    case(
        "adapted_loss",
        "cg_steps",
        lambda: adapted_loss(
            linear_loss,
            linear_outer,
            jnp.zeros(3),
            REG,
            KEY,
            steps=1,
            proximal=1.0,
            meta_gradient=Implicit(cg_steps=0),
        ),
    ),
    case(
        "adapted_loss",
        "key",
        lambda: adapted_loss(linear_loss, linear_outer, jnp.zeros(3), REG, "seed", steps=1),
    ),
    # Backbones.
    case("conv4", "filters", lambda: conv4(filters=0)),
    case("conv4", "blocks", lambda: conv4(blocks=0)),
    case("conv4", "outputs", lambda: conv4(outputs=0)),
    case("conv4", "convolution", lambda: conv4(convolution="fft")),
    case("conv4", "x", lambda: conv4().init(KEY, jnp.zeros((28, 28, 1))), r"x must have rank 4"),
    case("conv4", "x", lambda: conv4().init(KEY, jnp.zeros((2, 28, 28, 1), jnp.int32)), "dtype"),
    case("compiler_options", "backend", lambda: compiler_options(backend=0)),
    case("mlp", "hidden", lambda: mlp(hidden=(40, 0))),
    case("mlp", "hidden", lambda: mlp(hidden=(2.5,))),
    case("mlp", "outputs", lambda: mlp(outputs=0)),
    case("mlp", "x", lambda: mlp().init(KEY, jnp.zeros(3)), r"x must have rank >= 2"),
    case("mlp", "x", lambda: mlp().init(KEY, jnp.zeros((2, 3), jnp.int32)), "dtype"),
    # Model-based learners.
    case("mann", "ways", lambda: mann(ways=0, instances=2)),
    case("mann", "instances", lambda: mann(ways=2, instances=0)),
    case("mann", "memory_slots", lambda: mann(ways=5, instances=2, memory_slots=4)),
    case("mann", "memory_size", lambda: mann(ways=2, instances=2, memory_size=0)),
    case("mann", "read_heads", lambda: mann(ways=2, instances=2, read_heads=0)),
    case("mann", "controller", lambda: mann(ways=2, instances=2, controller=0)),
    case("mann", "usage_decay", lambda: mann(ways=2, instances=2, usage_decay=1.5)),
    case("mann", "usage_decay", lambda: mann(ways=2, instances=2, usage_decay="0.9")),
    case("mann", "key_strength", lambda: mann(ways=2, instances=2, key_strength=1)),
    case("lstm_baseline", "ways", lambda: lstm_baseline(ways=0, instances=2)),
    case("lstm_baseline", "instances", lambda: lstm_baseline(ways=2, instances=-1)),
    case("lstm_baseline", "hidden", lambda: lstm_baseline(ways=2, instances=2, hidden=0)),
    case(
        "episode_sequence",
        "ways",
        lambda: episode_sequence(vector_episode(), KEY, ways=0, instances=4),
    ),
    case(
        "episode_sequence",
        "instances",
        lambda: episode_sequence(vector_episode(), KEY, ways=WAYS, instances=3),
        r"ways \* instances",
    ),
    case(
        "episode_sequence",
        "episode",
        lambda: episode_sequence(
            with_support(vector_episode(), y=vector_episode().support.y * 1.0),
            KEY,
            ways=WAYS,
            instances=4,
        ),
        r"support\.y must be integer labels",
    ),
    case(
        "episode_sequence",
        "key",
        lambda: episode_sequence(vector_episode(), 3, ways=WAYS, instances=4),
    ),
    case("snail", "ways", lambda: snail(ways=0, shots=1)),
    case("snail", "shots", lambda: snail(ways=5, shots=0)),
    case("snail", "embedding", lambda: snail(ways=5, shots=1, embedding="conv4")),
    case("snail", "filters", lambda: snail(ways=5, shots=1, filters=0)),
    case("snail", "attention", lambda: snail(ways=5, shots=1, attention=((4,),))),
    case("snail", "attention", lambda: snail(ways=5, shots=1, attention=4)),
    case("snail", "shuffle_support", lambda: snail(ways=5, shots=1, shuffle_support=None)),
    case("meta_networks", "ways", lambda: meta_networks(ways=0)),
    case("meta_networks", "filters", lambda: meta_networks(ways=3, filters=0)),
    case("meta_networks", "blocks", lambda: meta_networks(ways=3, blocks=-1)),
    case("meta_networks", "hidden", lambda: meta_networks(ways=3, hidden=())),
    case("meta_networks", "meta_hidden", lambda: meta_networks(ways=3, meta_hidden=0)),
    case(
        "meta_networks",
        "representation_steps",
        lambda: meta_networks(ways=3, representation_steps=0),
    ),
    case("meta_networks", "preprocess_k", lambda: meta_networks(ways=3, preprocess_k=0.0)),
    case("meta_networks", "first_order", lambda: meta_networks(ways=3, first_order="no")),
    case("idemenet", "gallery", lambda: idemenet(gallery=np.zeros((4, 8, 8)))),
    case("idemenet", "gallery", lambda: idemenet(gallery=np.zeros((4, 8, 8, 1), np.uint8))),
    case("idemenet", "model", lambda: idemenet(**IDEME, model=1)),
    case("idemenet", "generated", lambda: idemenet(**IDEME, generated=0)),
    case("idemenet", "grid", lambda: idemenet(**IDEME, grid=9)),
    case("idemenet", "selection", lambda: idemenet(**IDEME, selection="x")),
    case("idemenet", "neighbours", lambda: idemenet(**IDEME, neighbours=0)),
    case("idemenet", "candidates", lambda: idemenet(**IDEME, candidates=1)),
    case(
        "idemenet",
        "deformation_filters",
        lambda: idemenet(**IDEME, deformation_filters=0),
    ),
    case(
        "idemenet",
        "deformation_blocks",
        lambda: idemenet(gallery=np.zeros((20, 8, 8, 1)), deformation_blocks=-1),
    ),
    # Outside this module's files (episodes.py and trainer.py): listed so that the walk
    # over metajax.__all__ below is complete.
    case(
        "sample_episode",
        "shots",
        lambda: sample_episode(KEY, vector_pool(), ways=2, shots=0, queries=1),
    ),
    case("pool_sampler", "ways", lambda: pool_sampler(vector_pool(), ways=0, shots=1, queries=1)),
    case("sample_batch", "tasks", lambda: sample_batch(sampler(), KEY, 2.5)),
    case("sample_batch", "tasks", lambda: sample_batch(sampler(), KEY, 0)),
    case("init_state", "sampler", lambda: init_state(LEARNER, OPTIMIZER, None, KEY)),
    case("init_state", "optimizer", lambda: init_state(LEARNER, None, sampler(), KEY)),
    case("init_state", "key", lambda: init_state(LEARNER, OPTIMIZER, sampler(), None)),
    case("init_state", "learner", lambda: init_state(None, OPTIMIZER, sampler(), KEY)),
    case(
        "meta_train",
        "tasks",
        lambda: meta_train(
            LEARNER,
            sampler(),
            OPTIMIZER,
            steps=1,
            key=KEY,
            tasks=3,
            mesh=FourDevices(),
            progress=False,
        ),
        r"tasks=3 must be a multiple of the 4 devices",
    ),
    case(
        "meta_train",
        "checkpoint_every",
        lambda: meta_train(
            LEARNER,
            sampler(),
            OPTIMIZER,
            steps=1,
            key=KEY,
            log_every=2,
            checkpoint_every=3,
            progress=False,
        ),
    ),
    case(
        "make_train_step",
        "tasks",
        lambda: make_train_step(LEARNER, OPTIMIZER, sampler(), tasks=0),
        r"tasks \(meta-batch size\)",
    ),
    case(
        "make_train_step",
        "task_chunk",
        lambda: make_train_step(LEARNER, OPTIMIZER, sampler(), tasks=2, task_chunk="some"),
        r"task_chunk must be an integer >= 1, None or 'auto'",
    ),
    case("make_evaluator", "episodes", lambda: make_evaluator(LEARNER, sampler(), episodes=1)),
    case("make_evaluator", "batch", lambda: make_evaluator(LEARNER, sampler(), batch=0)),
    case("evaluate", "episodes", lambda: evaluate(LEARNER, None, sampler(), key=KEY, episodes=1)),
    case(
        "is_transductive",
        "rtol",
        lambda: is_transductive(LEARNER, None, sampler(), key=KEY, rtol=0),
    ),
    case(
        "meta_train",
        "steps",
        lambda: meta_train(LEARNER, sampler(), OPTIMIZER, steps=-1, key=KEY, progress=False),
    ),
    case("mean_ci95", "values", lambda: mean_ci95([1.0])),
    case("task_mesh", "devices", lambda: task_mesh(0)),
    case("replicate", "mesh", lambda: replicate({"w": np.ones(2)}, None)),
    case("checkpoint_manager", "keep", lambda: checkpoint_manager("/tmp/unused-ckpt", keep=0)),
    case("save_state", "manager", lambda: save_state(None, 1, {}, {})),
    case("restore_state", "manager", lambda: restore_state(None, {})),
]


@pytest.mark.parametrize("api, argument, call, match", BAD_INPUTS)
def test_bad_input_raises_a_value_error_naming_the_argument(api, argument, call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_every_public_entry_point_has_a_bad_input_case():
    covered = {p.values[0] for p in BAD_INPUTS}
    # The learners' returned functions are covered by the malformed-episode table too.
    entry_points = {
        name
        for name in metajax.__all__
        if name not in NOT_ENTRY_POINTS
        and callable(getattr(metajax, name))
        and not inspect.isclass(getattr(metajax, name))
    }
    assert entry_points - covered == set(), "public entry points with no bad-input case"
    assert covered <= set(metajax.__all__), "cases for names that are not public"
    learner_factories = {
        name
        for name in entry_points
        if inspect.signature(getattr(metajax, name)).return_annotation
        in ("Learner", metajax.Learner)
    }
    assert learner_factories - set(LEARNERS) == set(), "learners with no malformed-episode case"


def test_checks_are_static_so_a_jitted_loss_still_runs_and_does_not_retrace():
    """The shared checks read shapes and dtypes only: jit traces once and runs."""
    learner, make_episode = LEARNERS["protonet"]
    learner, episode = learner(), make_episode()
    params = learner.init(KEY, episode)
    traces = []

    def loss(p, e, k):
        traces.append(None)
        return learner.loss(p, e, k)[0]

    jitted = jax.jit(loss)
    first = jitted(params, episode, KEY)
    second = jitted(params, vector_episode(), jax.random.key(9))
    assert np.isfinite(first) and np.isfinite(second)
    assert len(traces) == 1
