"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, CVPR 2018).

An embedding module f maps images to feature maps that keep their spatial layout;
each class is represented by the element-wise sum of its support examples' feature
maps; a relation module g reads the channel-wise concatenation of a class feature
and a query feature and outputs a relation score in ``[0, 1]``. Instead of a fixed
distance (ProtoNet's squared Euclidean) the comparison itself is learned. Training
regresses the scores onto the one-hot match of query and class by mean squared error.

Paper defaults (§3.4 and §4.1, Omniglot, 28x28 images):

* f: four blocks of 3x3 convolution with 64 filters, batch norm and ReLU; the
  first two blocks also 2x2 max-pool, the last two do not, so f's output is a
  64-channel 5x5 map. The paper does not give the padding: the authors' released
  code pads only the last two convolutions, which is what gives 5x5.
* g: two blocks of 3x3 convolution (64 filters, padded), batch norm, ReLU and 2x2
  max-pool (5x5 -> 2x2 -> 1x1, so 64 features), then a fully connected layer of 8
  with ReLU and one of 1 with a sigmoid.
* Adam with learning rate 1e-3, halved every 100,000 episodes; one episode per
  update; queries per class in a training episode: 19 for 5-way 1-shot, 15 for
  5-way 5-shot, 10 for 20-way 1-shot, 5 for 20-way 5-shot. Each model trains at
  the ways and shots it is tested at. The paper does not state the total length;
  the released Omniglot scripts default to 1,000,000 episodes.
* Table 1 (Omniglot, Vinyals split with rotated classes): 99.6 (5w1s), 99.8 (5w5s),
  97.6 (20w1s), 99.1 (20w5s).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.validation import (
    check_array,
    check_choice,
    check_classes,
    check_floating,
    check_int,
    check_label_values,
    check_model,
    check_optional_int,
)
from metajax.nets.backbones import CONVOLUTIONS, BatchStatNorm, Model, max_pool_2x2


class RelationEmbedding(nn.Module):
    """f: 3x3 conv, batch norm, ReLU blocks; the first ``pooled`` unpadded and max-pooled.

    The convolutions have no bias: batch norm's offset makes it redundant.
    """

    filters: int = 64
    blocks: int = 4
    pooled: int = 2
    convolution: str = "xla"

    @nn.compact
    def __call__(self, x):
        conv = CONVOLUTIONS[self.convolution]
        for i in range(self.blocks):
            pool = i < self.pooled
            x = nn.Conv(
                self.filters,
                (3, 3),
                padding="VALID" if pool else "SAME",
                use_bias=False,
                conv_general_dilated=conv,
            )(x)
            x = nn.relu(BatchStatNorm()(x))
            if pool:
                x = max_pool_2x2(x)
        return x


class RelationInput(NamedTuple):
    """What the relation module g reads: every (class, query) pair, unmaterialised.

    Attributes:
      classes: class features ``[c, *feature_shape]`` (sums of support feature maps).
      queries: query features ``[q, *feature_shape]``.
      present: ``[c]`` bool, the classes with at least one support example; batch
        norm in g must take its statistics over the pairs of these classes only.
    """

    classes: jax.Array
    queries: jax.Array
    present: jax.Array


class RelationModule(nn.Module):
    """g: padded conv blocks with max-pool, then Dense(hidden), ReLU, Dense(1).

    Maps a :class:`RelationInput` to ``[q, c]`` logits; the learner applies the
    sigmoid. ``blocks=0`` is an MLP over the flattened pair.

    g's first layer is linear in the concatenation ``[class, query]``, so it equals
    the first layer's class half applied to each class plus its query half applied
    to each query, broadcast-added. Computing it that way applies the widest layer
    to ``c + q`` feature maps instead of ``c * q`` pairs (18 times fewer in a 20-way
    1-shot episode with 10 queries per class) and never builds the concatenated
    pairs; the result is the same up to rounding.
    """

    filters: int = 64
    blocks: int = 2
    hidden: int = 8
    convolution: str = "xla"

    @nn.compact
    def __call__(self, inputs: RelationInput):
        classes, queries, present = inputs
        conv = CONVOLUTIONS[self.convolution]
        channels = classes.shape[-1]
        width = self.filters if self.blocks else self.hidden
        if self.blocks:
            kernel = self.param(
                "first_kernel",
                nn.initializers.lecun_normal(),
                (3, 3, 2 * channels, width),
                classes.dtype,
            )

            def first(x, k):
                return conv(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

            halves = (
                first(classes, kernel[:, :, :channels]),
                first(queries, kernel[:, :, channels:]),
            )
            bias = None  # Batch norm follows: its offset makes a bias redundant.
        else:
            classes = classes.reshape(classes.shape[0], -1)
            queries = queries.reshape(queries.shape[0], -1)
            kernel = self.param(
                "first_kernel",
                nn.initializers.lecun_normal(),
                (2 * classes.shape[1], width),
                classes.dtype,
            )
            halves = classes @ kernel[: classes.shape[1]], queries @ kernel[classes.shape[1] :]
            bias = self.param("first_bias", nn.initializers.zeros, (width,), classes.dtype)
        n_classes, n_queries = classes.shape[0], queries.shape[0]
        # Pairs are query-major: row i * c + j is (query i, class j).
        x = (halves[1][:, None] + halves[0][None]).reshape(
            n_queries * n_classes, *halves[0].shape[1:]
        )
        mask = jnp.broadcast_to(present[None], (n_queries, n_classes)).reshape(-1)
        if self.blocks:
            for i in range(self.blocks):
                if i:
                    x = nn.Conv(
                        self.filters,
                        (3, 3),
                        padding="SAME",
                        use_bias=False,
                        conv_general_dilated=conv,
                    )(x)
                # Pairs of absent classes stay out of the statistics: the scores of the
                # real classes must not depend on how many empty columns there are.
                weight = mask.reshape((-1,) + (1,) * (x.ndim - 1))
                x = max_pool_2x2(nn.relu(BatchStatNorm()(x, weight)))
            x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        else:
            x = nn.relu(x + bias)
        return nn.Dense(1)(x).reshape(n_queries, n_classes)


def pairwise(model: Model) -> Model:
    """A relation module from a network over explicit pairs ``[m, *shape[:-1], 2c]``.

    The pairs ``[class, query]`` are materialised (query-major) and ``model`` must
    map them to ``[m]`` or ``[m, 1]`` logits; its batch norm, if any, sees all
    pairs, including those of absent classes. For small networks and tests.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax.nets.backbones import mlp
      >>> g = pairwise(mlp(hidden=(8,), outputs=1))
      >>> x = RelationInput(jnp.ones((3, 4)), jnp.ones((5, 4)), jnp.ones(3, bool))
      >>> g.apply(g.init(jax.random.key(0), x), x).shape
      (5, 3)
    """

    def concatenate(inputs: RelationInput):
        classes, queries, _ = inputs
        shape = (queries.shape[0], classes.shape[0], *classes.shape[1:])
        pairs = jnp.concatenate(
            [jnp.broadcast_to(classes[None], shape), jnp.broadcast_to(queries[:, None], shape)],
            axis=-1,
        )
        return pairs.reshape(shape[0] * shape[1], *pairs.shape[2:]), shape[:2]

    def init(key, inputs):
        return model.init(key, concatenate(inputs)[0])

    def apply(params, inputs):
        pairs, shape = concatenate(inputs)
        return model.apply(params, pairs).reshape(shape)

    return Model(init=init, apply=apply)


def _check_images(x, name: str, min_side: int, channels: int | None = None):
    if getattr(x, "ndim", None) != 4:
        shape = getattr(x, "shape", None)
        got = f"shape {tuple(shape)}" if shape is not None else type(x).__name__
        raise ValueError(f"{name} must be images [n, height, width, channels] (rank 4), got {got}")
    check_floating(name, x)
    if min(x.shape[1:3]) < min_side:
        raise ValueError(
            f"{name} must be at least {min_side}x{min_side} for these blocks, "
            f"got {x.shape[1]}x{x.shape[2]}"
        )
    if channels is not None and x.shape[3] != channels:
        raise ValueError(f"{name} must have {channels} channels as at init, got {x.shape[3]}")


def relation_embedding(
    *, filters: int = 64, blocks: int = 4, pooled: int = 2, convolution: str = "xla"
) -> Model:
    """The embedding module f of Sung et al. 2018 (§3.4), keeping feature maps spatial.

    Args:
      filters: channels of every convolution (64 in the paper).
      blocks: conv blocks (4 in the paper).
      pooled: how many of the first blocks are unpadded and 2x2 max-pooled (2).
      convolution: ``"xla"`` or ``"im2col"``, as in :func:`metajax.nets.backbones.conv4`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = relation_embedding()
      >>> x = jnp.zeros((3, 28, 28, 1))
      >>> model.apply(model.init(jax.random.key(0), x), x).shape
      (3, 5, 5, 64)
    """
    check_int("filters", filters, 1)
    check_int("blocks", blocks, 1)
    check_int("pooled", pooled, 0, blocks, why=f" (at most blocks={blocks})")
    check_choice("convolution", convolution, tuple(CONVOLUTIONS))
    module = RelationEmbedding(
        filters=filters, blocks=blocks, pooled=pooled, convolution=convolution
    )
    # Smallest side that leaves at least 1x1 after the unpadded, pooled blocks.
    min_side = 1
    for _ in range(pooled):
        min_side = 2 * min_side + 2

    def init(key, x):
        _check_images(x, "x", min_side)
        return module.init(key, x)["params"]

    def apply(params, x):
        _check_images(x, "x", min_side, params["Conv_0"]["kernel"].shape[2])
        return module.apply({"params": params}, x)

    return Model(init=init, apply=apply)


def relation_module(
    *, filters: int = 64, blocks: int = 2, hidden: int = 8, convolution: str = "xla"
) -> Model:
    """The relation module g of Sung et al. 2018 (§3.4), less its final sigmoid.

    Its ``apply(params, inputs)`` maps a :class:`RelationInput` (``c`` classes and
    ``q`` queries, feature maps ``[*spatial, channels]``, or flat features when
    ``blocks=0``) to ``[q, c]`` logits, one per ``[class, query]`` pair.

    Args:
      filters: channels of the convolutions (64 in the paper).
      blocks: padded conv blocks, each with 2x2 max-pool (2); 0 gives an MLP.
      hidden: width of the first fully connected layer (8).
      convolution: ``"xla"`` or ``"im2col"``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> g = relation_module()
      >>> x = RelationInput(jnp.ones((2, 5, 5, 64)), jnp.ones((6, 5, 5, 64)), jnp.ones(2, bool))
      >>> g.apply(g.init(jax.random.key(0), x), x).shape
      (6, 2)
    """
    check_int("filters", filters, 1)
    check_int("blocks", blocks, 0)
    check_int("hidden", hidden, 1)
    check_choice("convolution", convolution, tuple(CONVOLUTIONS))
    module = RelationModule(filters=filters, blocks=blocks, hidden=hidden, convolution=convolution)

    def check(inputs):
        if not isinstance(inputs, RelationInput):
            raise ValueError(f"inputs must be a RelationInput, got {type(inputs).__name__}")
        for name in ("classes", "queries"):
            x = getattr(inputs, name)
            if blocks:
                _check_images(x, name, 2**blocks)
            else:
                check_array(name, x, min_rank=2, layout="[n, *features]")
                check_floating(name, x)
        if inputs.classes.shape[1:] != inputs.queries.shape[1:]:
            raise ValueError(
                f"classes features {inputs.classes.shape[1:]} differ from queries' "
                f"{inputs.queries.shape[1:]}"
            )
        if inputs.present.shape != inputs.classes.shape[:1]:
            raise ValueError(
                f"present must be [{inputs.classes.shape[0]}], got {inputs.present.shape}"
            )

    def init(key, inputs):
        check(inputs)
        return module.init(key, inputs)["params"]

    def apply(params, inputs):
        check(inputs)
        return module.apply({"params": params}, inputs)

    return Model(init=init, apply=apply)


def relation_network(
    model: Model | None = None, relation: Model | None = None, *, ways: int | None = None
) -> Learner:
    """Relation Networks (Sung et al. 2018), trained by MSE on one-hot targets.

    Support and query are embedded in one pass, so the batch norm of f uses the
    episode's statistics (see :mod:`metajax.nets.backbones`); the batch norm of g uses the
    statistics of the (class, query) pairs of the classes present in the support set.

    ``predict`` returns relation scores in ``[0, 1]``, one column per label, with
    ``-inf`` in the columns of labels absent from the support set (ProtoNet's
    convention), so argmax is the prediction. By default there is one column per
    possible label ``0..n_support-1``, since the number of ways is not a property of
    the arrays; in a k-shot episode ``(k-1)/k`` of those columns are empty, yet g
    is still evaluated on them (and masked out). Pass ``ways`` to fix the number of
    columns instead and skip that work.

    The loss is the mean of ``(score - [label == column])**2`` over queries and the
    present columns, the paper's eq. 3 divided by the number of terms (as the
    released code's ``MSELoss`` does); ``accuracy`` is also reported.

    Args:
      model: the embedding f, images ``[n, ...]`` to feature maps ``[n, ..., c]``;
        :func:`relation_embedding` (the paper's Omniglot f) by default. It may also
        give flat features ``[n, c]`` for a relation module with ``blocks=0``.
      relation: the relation module g, a :class:`~metajax.nets.backbones.Model` over a
        :class:`RelationInput` (class features, query features, present classes)
        returning ``[q, c]`` logits, one per pair ``[class feature, query feature]``
        (the channel-wise concatenation in the paper's order, eq. 1); the sigmoid is
        applied here. :func:`relation_module` (the paper's g) by default;
        :func:`pairwise` turns a network over explicit pairs into one.
      ways: the number of score columns and of classes per episode, or ``None`` for
        ``n_support`` columns. With ``ways``, the support set must hold at least one
        example of each label ``0..ways-1`` (checked when the labels are concrete,
        i.e. outside ``jit``; inside, an empty class gets ``-inf`` scores).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jax.random.uniform(jax.random.key(0), (10, 8, 28, 28, 1))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=5, shots=1, queries=2)
      >>> learner = relation_network()
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = learner.loss(params, episode, jax.random.key(3))
      >>> sorted(metrics)
      ['accuracy', 'loss']
      >>> learner.predict(params, episode.support, episode.query.x, None).shape
      (10, 5)
    """
    check_model("model", model, optional=True)
    check_model("relation", relation, optional=True)
    check_optional_int("ways", ways, 1)
    model = relation_embedding() if model is None else model
    relation = relation_module() if relation is None else relation

    def check_labels(support: Split, query_x, query_y=None):
        """The support set fits the columns: ``ways`` classes, each present; or labels < n."""
        del query_x, query_y
        if ways is None:
            check_label_values("support.y", support.y, support.x.shape[0], what="n_support")
        else:
            check_classes(support, ways, every=True)

    def scores(params, support: Split, query_x):
        """Relation scores ``[n_query, columns]`` in [0, 1] and the mask of present columns."""
        n_support = support.x.shape[0]
        columns = n_support if ways is None else ways
        embedded = model.apply(params["embedding"], jnp.concatenate([support.x, query_x]))
        # Eq. 1 for k shots (§3.2): a class is the element-wise sum of its feature maps.
        class_features = jax.ops.segment_sum(embedded[:n_support], support.y, columns)
        counts = jax.ops.segment_sum(jnp.ones_like(support.y), support.y, columns)
        present = counts > 0
        inputs = RelationInput(class_features, embedded[n_support:], present)
        return jax.nn.sigmoid(relation.apply(params["relation"], inputs)), present

    def init(key, episode: Episode):
        embedding_key, relation_key = jax.random.split(key)
        embedding = model.init(embedding_key, episode.support.x)
        features = model.apply(embedding, episode.support.x)
        inputs = RelationInput(features, features, jnp.ones(features.shape[0], bool))
        return {"embedding": embedding, "relation": relation.init(relation_key, inputs)}

    def predict(params, support: Split, query_x, key=None):
        del key  # Deterministic given the episode.
        relations, present = scores(params, support, query_x)
        return jnp.where(present[None, :], relations, -jnp.inf)

    def loss(params, episode: Episode, key=None):
        del key
        relations, present = scores(params, episode.support, episode.query.x)
        targets = jax.nn.one_hot(episode.query.y, relations.shape[1], dtype=relations.dtype)
        errors = jnp.where(present[None, :], jnp.square(relations - targets), 0.0)
        mse = jnp.sum(errors) / (relations.shape[0] * jnp.sum(present))
        predicted = jnp.argmax(jnp.where(present[None, :], relations, -jnp.inf), -1)
        accuracy = jnp.mean(predicted == episode.query.y)
        return mse, {"loss": mse, "accuracy": accuracy}

    return checked(Learner(init=init, loss=loss, predict=predict), extra=check_labels)
