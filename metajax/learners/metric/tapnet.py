"""TapNet: Time-series attentional prototype network (Zhang, Gao, Lin & Lu, AAAI 2020).

A multivariate series is embedded by two branches whose outputs are concatenated
and mapped to a low-dimensional space:

* *random dimension permutation*: the variables are drawn into ``groups`` random
  subsets (fixed once, by ``seed``); each subset has its own first 1-D convolution,
  the later convolutions are shared, and each group is globally average-pooled over
  time. Grouping lets the network see different combinations of variables.
* an LSTM over the whole multivariate series, averaged over time.

Each class's prototype is an *attention-weighted* sum of its support embeddings
(the attention of Ilse et al. 2018, ``softmax(w^T tanh(V h))`` within the class),
so that a class's more typical examples count more; a query is classified by a
softmax over negative squared Euclidean distances to the prototypes.

Inputs are the masked layout of :mod:`metajax.datasets.uea`: ``x`` is ``[n, length,
channels + 1]`` with the last channel 1.0 on real time steps and 0.0 on end padding.
Padding never changes the output: every convolution's output is re-zeroed on padded
steps (so the next convolution sees exactly the zero padding a shorter array would
get), batch norm and pooling count real steps only, and the LSTM's outputs are
averaged over real steps (padding is at the end, so real steps never see it).

Paper defaults. From the paper and the authors' released code (github.com/xuchenchen/
TapNet), as best I can tell: three convolutions of 256, 256 and 128 filters with
kernels 8, 5 and 3, each followed by batch norm and leaky ReLU; an LSTM of 128
units; mapping layers of 500 and 300 units; attention of 128 units; squared
Euclidean distance; 3 permutation groups of ``floor(2 * channels / 3)`` variables
each (the code's default ``rp_params``); full-batch Adam with learning rate 1e-5 and
weight decay 1e-3 for up to 3000 epochs. The attention net is one per class
(``classes=K`` here); with episodes whose labels are re-drawn each time (N-way
k-shot), a per-class net is meaningless, so ``classes=None`` (the default) shares
one attention net across classes. Not implemented: the paper's semi-supervised
variant, which also uses unlabelled series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from metajax.core.distances import pairwise_distance
from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import classification_loss
from metajax.core.validation import (
    check_array,
    check_classes,
    check_float,
    check_int,
    check_int_sequence,
    check_optional_int,
    check_query_classes,
)
from metajax.nets.backbones import BatchStatNorm


def dimension_groups(
    channels: int, *, groups: int = 3, group_channels: int | None = None, seed: int = 0
) -> np.ndarray:
    """TapNet's random dimension permutation: ``[groups, group_channels]`` variable indices.

    Each group is the first ``group_channels`` entries of its own random permutation of
    ``0..channels-1``, so a group never repeats a variable; the same seed always gives
    the same groups (NumPy's ``default_rng``).

    Args:
      channels: variables per time step.
      groups: how many groups (3 in the released code).
      group_channels: variables per group; ``floor(2 * channels / 3)`` (at least 1) by
        default, as in the released code.
      seed: the seed of the permutation.

    Example:
      >>> dimension_groups(6, seed=0).shape
      (3, 4)
    """
    check_int("channels", channels, 1)
    check_int("groups", groups, 1)
    check_int("seed", seed, 0)
    if group_channels is None:
        group_channels = max(1, math.floor(channels / 1.5))
    check_int("group_channels", group_channels, 1, channels, why=f" (channels={channels})")
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(channels)[:group_channels] for _ in range(groups)])


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    total = (kernel - 1) * dilation
    return total // 2, total - total // 2


class TapNetEncoder(nn.Module):
    """The two TapNet branches and the mapping layers: ``(x, mask) -> [n, mapping[-1]]``."""

    groups: tuple[tuple[int, ...], ...]
    filters: tuple[int, ...]
    kernels: tuple[int, ...]
    dilation: int
    lstm_units: int
    mapping: tuple[int, ...]

    @nn.compact
    def __call__(self, values, mask):  # values [n, T, C], mask [n, T]
        weight = mask[None, :, :, None]
        index = np.asarray(self.groups)
        n_groups, group_channels = index.shape
        # [groups, n, T, group_channels]: the permuted variables of every group.
        h = jnp.moveaxis(values[..., index], 2, 0)
        # First layer: a kernel per group, as shifted copies and one batched matmul
        # (a grouped convolution, which XLA:CPU runs slowly).
        k = self.kernels[0]
        kernel = self.param(
            "group_conv_kernel",
            nn.initializers.lecun_normal(in_axis=(1, 2), out_axis=3, batch_axis=(0,)),
            (n_groups, k, group_channels, self.filters[0]),
        )
        bias = self.param("group_conv_bias", nn.initializers.zeros, (n_groups, self.filters[0]))
        length = h.shape[2]
        padded = jnp.pad(h, ((0, 0), (0, 0), same_padding(k, self.dilation), (0, 0)))
        patches = jnp.concatenate(
            [padded[:, :, i * self.dilation : i * self.dilation + length] for i in range(k)],
            axis=-1,
        )
        h = jnp.einsum("gntk,gkf->gntf", patches, kernel.reshape(n_groups, k * group_channels, -1))
        h = h + bias[:, None, None, :]
        for i, (width, k) in enumerate(zip(self.filters, self.kernels, strict=True)):
            if i > 0:  # Later convolutions are shared by all groups.
                flat = h.reshape((-1, *h.shape[2:]))
                flat = nn.Conv(
                    width, (k,), padding="SAME", kernel_dilation=self.dilation, name=f"conv_{i}"
                )(flat)
                h = flat.reshape((n_groups, -1, *flat.shape[1:]))
            # Statistics per group, over the episode's real time steps only.
            h = BatchStatNorm(axes=(1, 2), name=f"norm_{i}")(h, weight)
            # Re-zero padded steps: the next convolution must see the zeros a shorter
            # series' own padding would give, and pooling must ignore them.
            h = nn.leaky_relu(h) * weight
        steps = jnp.maximum(mask.sum(1), 1.0)  # [n]
        pooled = h.sum(2) / steps[None, :, None]  # [groups, n, F]
        conv_features = jnp.moveaxis(pooled, 0, 1).reshape(values.shape[0], -1)
        # The LSTM reads every step but only real steps' outputs are averaged; padding
        # is at the end, so no real step's output has seen a padded one.
        # An explicit zero carry in the inputs' dtype (flax's default is float32).
        carry = (jnp.zeros((values.shape[0], self.lstm_units), values.dtype),) * 2
        outputs = nn.RNN(nn.OptimizedLSTMCell(self.lstm_units), name="lstm")(
            values, initial_carry=carry
        )
        lstm_features = jnp.sum(outputs * mask[..., None], 1) / steps[:, None]
        h = jnp.concatenate([conv_features, lstm_features], axis=-1)
        for i, width in enumerate(self.mapping):
            h = nn.Dense(width, name=f"mapping_{i}")(h)
            if i < len(self.mapping) - 1:
                h = nn.leaky_relu(BatchStatNorm(name=f"mapping_norm_{i}")(h))
        return h


class PrototypeAttention(nn.Module):
    """Attention scores ``w_k^T tanh(V_k h + b_k)`` of every embedding under each head ``k``."""

    heads: int
    units: int

    @nn.compact
    def __call__(self, h):  # [n, D] -> [n, heads]
        v = self.param(
            "v",
            nn.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=(0,)),
            (self.heads, h.shape[-1], self.units),
        )
        b = self.param("b", nn.initializers.zeros, (self.heads, self.units))
        w = self.param(
            "w",
            nn.initializers.lecun_normal(in_axis=1, out_axis=(), batch_axis=(0,)),
            (self.heads, self.units),
        )
        return jnp.einsum("nku,ku->nk", jnp.tanh(jnp.einsum("nd,kdu->nku", h, v) + b), w)


def attention_prototypes(embeddings, scores, labels, num_classes: int):
    """Prototypes ``[num_classes, d]`` as attention-weighted sums, and a mask of present classes.

    ``scores[j]`` is support example ``j``'s attention score; the weights are its softmax
    within its own class, so every present class's weights sum to one.
    """
    ones = jnp.ones_like(scores)
    present = jax.ops.segment_sum(ones, labels, num_segments=num_classes) > 0
    top = jax.ops.segment_max(scores, labels, num_segments=num_classes)
    # The per-class maximum only stabilises the exponent; the softmax does not depend on it.
    e = jnp.exp(scores - jax.lax.stop_gradient(jnp.where(present, top, 0.0))[labels])
    weights = e / jax.ops.segment_sum(e, labels, num_segments=num_classes)[labels]
    protos = jax.ops.segment_sum(weights[:, None] * embeddings, labels, num_segments=num_classes)
    return protos, present


def tapnet(
    *,
    channels: int,
    length: int,
    groups: int = 3,
    group_channels: int | None = None,
    filters: Sequence[int] = (256, 256, 128),
    kernels: Sequence[int] = (8, 5, 3),
    dilation: int = 1,
    lstm_units: int = 128,
    mapping: Sequence[int] = (500, 300),
    attention_units: int = 128,
    classes: int | None = None,
    separation: float = 0.0,
    seed: int = 0,
) -> Learner:
    """TapNet (Zhang et al., AAAI 2020) as a :class:`~metajax.core.learner.Learner`.

    Support and query are embedded in one pass, so batch norm uses the episode's
    statistics (see :mod:`metajax.nets.backbones`). Logits follow :func:`metajax.protonet`:
    one column per possible label ``0..n_support-1``, ``-inf`` for labels absent from
    the support set.

    Args:
      channels: variables per time step (``x`` has one more: the mask channel).
      length: time steps per (padded) series.
      groups: random permutation groups.
      group_channels: variables per group (``floor(2 * channels / 3)`` by default).
      filters: filters of the three convolutions (256, 256, 128 in the paper).
      kernels: their kernel sizes (8, 5, 3).
      dilation: the convolutions' dilation (1).
      lstm_units: LSTM width (128).
      mapping: widths of the mapping layers after concatenation (500, 300).
      attention_units: width of the attention's hidden layer (128).
      classes: ``None`` shares one attention net across classes (N-way k-shot
        episodes, labels re-drawn per episode); an integer ``K`` gives each label
        ``0..K-1`` its own attention net, as in the paper, where label ``k`` is
        always the same class (:func:`metajax.datasets.uea.class_sampler`); labels
        must then lie in ``0..K-1``.
      separation: weight of the released code's optional regulariser that pushes
        prototypes apart, the mean over class pairs of ``exp(-d/2)`` (0 disables it).
      seed: the seed of the dimension permutation (:func:`dimension_groups`); the
        parameters' initialisation comes from the key given to ``init``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jnp.ones((5, 4, 16, 4)).at[..., :3].set(
      ...     jax.random.normal(jax.random.key(0), (5, 4, 16, 3)))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=3, shots=2, queries=2)
      >>> learner = tapnet(channels=3, length=16, filters=(8, 8, 4), lstm_units=4,
      ...                  mapping=(16, 8), attention_units=8)
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = learner.loss(params, episode, jax.random.key(3))
      >>> learner.predict(params, episode.support, episode.query.x, None).shape
      (6, 6)
    """
    index = dimension_groups(channels, groups=groups, group_channels=group_channels, seed=seed)
    filters = check_int_sequence("filters", filters, 1)
    kernels = check_int_sequence("kernels", kernels, 1)
    mapping = check_int_sequence("mapping", mapping, 1)
    if len(filters) != len(kernels):
        raise ValueError(
            f"filters and kernels must be equally long (one kernel size per convolution): "
            f"{filters} vs {kernels}"
        )
    for name, value in (
        ("length", length),
        ("dilation", dilation),
        ("lstm_units", lstm_units),
        ("attention_units", attention_units),
    ):
        check_int(name, value, 1)
    check_optional_int("classes", classes, 1)
    check_float("separation", separation, 0)
    encoder = TapNetEncoder(
        groups=tuple(tuple(int(i) for i in g) for g in index),
        filters=filters,
        kernels=kernels,
        dilation=dilation,
        lstm_units=lstm_units,
        mapping=mapping,
    )
    attention = PrototypeAttention(heads=1 if classes is None else classes, units=attention_units)

    def check_x(x, name):
        check_array(name, x, rank=3, layout=f"[n, length={length}, channels + 1={channels + 1}]")
        if x.shape[2] != channels + 1:
            raise ValueError(
                f"{name} must be [n, length, channels + 1] = [n, {length}, {channels + 1}] "
                f"(channels={channels} values and a mask channel), got shape {x.shape}"
            )
        if x.shape[1] != length:
            raise ValueError(f"{name} has {x.shape[1]} time steps, but length={length}")

    def check_inputs(support: Split, query_x, query_y=None):
        """Series of the configured layout; with ``classes``, each label present once at least."""
        check_x(support.x, "support.x")
        check_x(query_x, "query_x" if query_y is None else "query.x")
        if classes is not None:
            check_classes(support, classes, what="classes", every=True)
        if query_y is not None:
            check_query_classes(support.y, query_y)

    def embed(params, x):
        values, mask = x[..., :-1], x[..., -1]
        return encoder.apply({"params": params["encoder"]}, values * mask[..., None], mask)

    def init(key, episode: Episode):  # jitted by checked()
        x = episode.support.x
        encoder_key, attention_key = jax.random.split(key)
        enc = encoder.init(encoder_key, x[..., :-1], x[..., -1])["params"]
        h = encoder.apply({"params": enc}, x[..., :-1], x[..., -1])
        att = attention.init(attention_key, h)["params"]
        return {"encoder": enc, "attention": att}

    # The checks (in checked(), outside this jit) run eagerly and may read concrete
    # labels; the numerics are jitted once per shape, so that eager calls are not
    # dispatched op by op.
    @jax.jit
    def prototypes_and_queries(params, support: Split, query_x):
        n_support = support.x.shape[0]
        embedded = embed(params, jnp.concatenate([support.x, query_x]))
        s = embedded[:n_support]
        scores = attention.apply({"params": params["attention"]}, s)
        if classes is None:
            scores = scores[:, 0]
        else:
            labels = jnp.clip(support.y, 0, classes - 1)
            scores = jnp.take_along_axis(scores, labels[:, None], axis=1)[:, 0]
        protos, present = attention_prototypes(s, scores, support.y, n_support)
        return protos, present, embedded[n_support:]

    def predict(params, support: Split, query_x, key=None):
        del key  # Deterministic given the episode.
        protos, present, q = prototypes_and_queries(params, support, query_x)
        logits = -pairwise_distance(q, protos, "squared_euclidean")
        return jnp.where(present[None, :], logits, -jnp.inf)

    def loss(params, episode: Episode, key=None):
        del key
        protos, present, q = prototypes_and_queries(params, episode.support, episode.query.x)
        logits = jnp.where(
            present[None, :], -pairwise_distance(q, protos, "squared_euclidean"), -jnp.inf
        )
        value, metrics = classification_loss(logits, episode.query.y)
        if separation > 0:
            d = pairwise_distance(protos, protos, "squared_euclidean")
            pairs = present[:, None] & present[None, :] & ~jnp.eye(len(protos), dtype=bool)
            closeness = jnp.sum(jnp.where(pairs, jnp.exp(-0.5 * d), 0.0))
            value = value + separation * closeness / jnp.maximum(pairs.sum(), 1)
            metrics = {**metrics, "loss": value}
        return value, metrics

    return checked(Learner(init=init, loss=loss, predict=predict), extra=check_inputs)
