"""SNAIL, the Simple Neural AttentIve meta-Learner (Mishra, Rohaninejad, Chen & Abbeel, ICLR 2018).

A few-shot task is read as a sequence: the ``N·K`` support examples, each an
embedding concatenated with its one-hot label, then the query with an all-zero
label; the sequence model's output at the query position is the query's class
logits. The sequence model interleaves two causal building blocks (§3, Figure 2):

* temporal convolutions (:class:`TCBlock`): stacks of :class:`DenseBlock`, each a
  causal dilated convolution of kernel 2 with a gated activation
  ``tanh(x_f) ⊙ sigmoid(x_g)``, whose output is concatenated to its input;
* causal soft attention (:class:`AttentionBlock`): one head of key/query/value
  attention, the logits scaled by ``1/sqrt(key_size)`` and masked so that a
  position reads only itself and earlier positions; its read is concatenated to
  its input.

The paper's Omniglot network for N-way K-shot (Appendix, ``T = N·K + 1``):
``AttentionBlock(64, 32), TCBlock(T, 128), AttentionBlock(256, 128), TCBlock(T, 128),
AttentionBlock(512, 256)`` and a 1x1 convolution (a dense layer per position) to
``N`` logits, after the Conv-4 embedding of Vinyals et al. (four blocks of 3x3
convolution with 64 filters, batch norm, ReLU and 2x2 max-pool: 64 features for
28x28 inputs). Reported accuracies (Table 1, Omniglot, Vinyals split): 99.07
(5-way 1-shot), 99.78 (5-way 5-shot), 97.64 (20-way 1-shot), 99.36 (20-way 5-shot).

Choices of ours, where the paper's pseudocode and our reading differ:

* dilations. The pseudocode loops ``i = 1..ceil(log2 T)`` with dilation ``2^i``;
  with kernel 2 that never reaches an odd offset (position ``t`` would not see
  ``t-1``), so we use ``2^(i-1)``: dilations ``1, 2, 4, ...``, whose receptive
  field ``2^ceil(log2 T) >= T`` covers the whole sequence, as the text intends.
* many queries per episode. Every query gets its own sequence (support, then that
  one query), so a query never sees another. Because the blocks are causal, the
  support positions' activations are the same in every such sequence; they are
  computed once per episode and each query's last position reads them (see
  :class:`SNAILSequence`). That is the vmap over queries, without repeating the
  support part ``n_query`` times; ``tests/test_snail.py`` checks it against
  separate sequences.
* support order. The shared sampler orders the support by label, an order a
  sequence model could learn to rely on; ``loss`` shuffles the support positions
  with its key, and ``predict`` does too when given a key (in the order given when
  the key is ``None``).
* the loss is the cross-entropy of the query positions only. With the paper's input
  (each support example carries its own label) the support positions' predictions
  would be trivially their input labels, so there is nothing to gain from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import classification_loss
from metajax.core.validation import check_bool, check_int, check_label_values, check_model
from metajax.nets.backbones import Model, conv4

Array = jax.Array

# AttentionBlock(key_size, value_size) of the paper's Omniglot network, in order.
OMNIGLOT_ATTENTION = ((64, 32), (256, 128), (512, 256))


def dilations(length: int) -> tuple[int, ...]:
    """``1, 2, 4, ...``: ``ceil(log2 length)`` dilations, enough to see ``length`` positions.

    Example:
      >>> dilations(6), dilations(21)
      ((1, 2, 4), (1, 2, 4, 8, 16))
    """
    check_int("length", length, 1)
    return tuple(2**i for i in range(math.ceil(math.log2(length))))


def _shift(prefix: Array, by: int) -> Array:
    """``prefix[t - by]`` at every position ``t`` of the prefix, zero before its start."""
    pad = jnp.zeros((min(by, prefix.shape[0]), prefix.shape[1]), prefix.dtype)
    return jnp.concatenate([pad, prefix[: prefix.shape[0] - by]])[: prefix.shape[0]]


class DenseBlock(nn.Module):
    """A causal dilated convolution (kernel 2) with a gated activation, concatenated to its input.

    Works on a shared ``prefix`` ``[S, c]`` and ``Q`` alternative last positions
    ``tail`` ``[Q, c]`` (each the position right after the prefix): output position
    ``t`` reads inputs ``t`` and ``t - dilation`` only, zero before the start.

    Attributes:
      dilation: the offset of the earlier input.
      filters: channels ``D`` of the gated output; the block adds ``D`` channels.
    """

    dilation: int
    filters: int

    @nn.compact
    def __call__(self, prefix, tail):
        n = prefix.shape[0]
        # Kernel 2 convolution = one dense layer on [x_{t-d}, x_t].
        previous_tail = (
            jnp.broadcast_to(prefix[n - self.dilation], tail.shape)
            if self.dilation <= n
            else jnp.zeros_like(tail)
        )
        conv_f = nn.Dense(self.filters, name="filter")
        conv_g = nn.Dense(self.filters, name="gate")

        def gated(previous, current):
            pair = jnp.concatenate([previous, current], axis=-1)
            return jnp.tanh(conv_f(pair)) * jax.nn.sigmoid(conv_g(pair))

        return (
            jnp.concatenate([prefix, gated(_shift(prefix, self.dilation), prefix)], axis=-1),
            jnp.concatenate([tail, gated(previous_tail, tail)], axis=-1),
        )


class TCBlock(nn.Module):
    """``ceil(log2 length)`` :class:`DenseBlock` s with dilations ``1, 2, 4, ...``.

    Attributes:
      length: ``T``, the sequence length (support plus one query).
      filters: ``D`` per dense block.
    """

    length: int
    filters: int

    @nn.compact
    def __call__(self, prefix, tail):
        for dilation in dilations(self.length):
            prefix, tail = DenseBlock(dilation, self.filters)(prefix, tail)
        return prefix, tail


class AttentionBlock(nn.Module):
    """Causal single-head key/query/value attention; its read is concatenated to its input.

    A prefix position ``t`` attends to prefix positions ``0..t``; each tail position
    to the whole prefix and itself (never to another tail position). Logits are
    scaled by ``1/sqrt(key_size)``.

    Attributes:
      key_size: ``K``, the width of keys and queries.
      value_size: ``V``, the width of values; the block adds ``V`` channels.
    """

    key_size: int
    value_size: int

    @nn.compact
    def __call__(self, prefix, tail):
        keys = nn.Dense(self.key_size, name="key")
        queries = nn.Dense(self.key_size, name="query")
        values = nn.Dense(self.value_size, name="value")
        scale = 1.0 / math.sqrt(self.key_size)
        k, q, v = keys(prefix), queries(prefix), values(prefix)
        n = prefix.shape[0]
        causal = jnp.tril(jnp.ones((n, n), bool))
        logits = jnp.where(causal, scale * q @ k.T, -jnp.inf)  # the diagonal is never masked
        prefix_read = jax.nn.softmax(logits, axis=-1) @ v
        k_t, q_t, v_t = keys(tail), queries(tail), values(tail)
        tail_logits = scale * jnp.concatenate(
            [q_t @ k.T, jnp.sum(q_t * k_t, axis=-1, keepdims=True)], axis=-1
        )
        weights = jax.nn.softmax(tail_logits, axis=-1)
        tail_read = weights[:, :n] @ v + weights[:, n:] * v_t
        return (
            jnp.concatenate([prefix, prefix_read], axis=-1),
            jnp.concatenate([tail, tail_read], axis=-1),
        )


class SNAILSequence(nn.Module):
    """The paper's sequence model: attention and TC blocks alternating, then ``outputs`` logits.

    ``__call__(prefix, tail)`` returns the logits of every prefix position ``[S, outputs]``
    and of every tail position ``[Q, outputs]``, where tail row ``j`` is the last
    position of its own sequence ``prefix + [tail_j]``. Since every block is causal,
    this is what running the ``Q`` sequences separately gives, at the cost of one.

    Attributes:
      length: ``T``, the sequence length, which sets the TC blocks' dilations.
      outputs: logits per position (``N``).
      filters: ``D`` of the TC blocks (128 in the paper).
      attention: ``(key_size, value_size)`` of the attention blocks, one more than TC blocks.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> net = SNAILSequence(length=4, outputs=3, filters=4, attention=((4, 2), (4, 2)))
      >>> prefix, tail = jnp.ones((3, 5)), jnp.ones((2, 5))
      >>> params = net.init(jax.random.key(0), prefix, tail)
      >>> [a.shape for a in net.apply(params, prefix, tail)]
      [(3, 3), (2, 3)]
    """

    length: int
    outputs: int
    filters: int = 128
    attention: Sequence[tuple[int, int]] = OMNIGLOT_ATTENTION

    @nn.compact
    def __call__(self, prefix, tail):
        for i, (key_size, value_size) in enumerate(self.attention):
            if i:
                prefix, tail = TCBlock(self.length, self.filters)(prefix, tail)
            prefix, tail = AttentionBlock(key_size, value_size)(prefix, tail)
        head = nn.Dense(self.outputs, name="logits")  # the 1x1 convolution
        return head(prefix), head(tail)


def episode_sequences(
    support_embeddings: Array, support_y: Array, query_embeddings: Array, *, ways: int, key=None
) -> tuple[Array, Array]:
    """SNAIL's input: support positions ``[S, d + ways]``, query positions ``[Q, d + ways]``.

    A support position is its embedding followed by the one-hot of its label; a
    query position is its embedding followed by ``ways`` zeros, since its label is
    what is asked for. With a ``key`` the support positions are shuffled (embeddings
    and labels together); without one they keep the order given.

    Example:
      >>> import jax.numpy as jnp
      >>> prefix, tail = episode_sequences(jnp.ones((2, 3)), jnp.array([0, 1]), jnp.ones((4, 3)),
      ...                                  ways=2)
      >>> prefix[:, 3:].tolist(), tail.shape, float(tail[:, 3:].sum())
      ([[1.0, 0.0], [0.0, 1.0]], (4, 5), 0.0)
    """
    labels = jax.nn.one_hot(support_y, ways, dtype=support_embeddings.dtype)
    s = support_embeddings
    if key is not None:
        order = jax.random.permutation(key, s.shape[0])
        s, labels = s[order], labels[order]
    prefix = jnp.concatenate([s, labels], axis=-1)
    q = query_embeddings
    tail = jnp.concatenate([q, jnp.zeros((q.shape[0], ways), q.dtype)], axis=-1)
    return prefix, tail


def snail(
    *,
    ways: int,
    shots: int,
    embedding: Model | None = None,
    filters: int = 128,
    attention: Sequence[tuple[int, int]] = OMNIGLOT_ATTENTION,
    shuffle_support: bool = True,
) -> Learner:
    """SNAIL (Mishra et al. 2018) for ``ways``-way ``shots``-shot classification.

    Support and query are embedded in one pass of ``embedding``, so its batch norm
    uses the episode's statistics, as in :func:`metajax.learners.metric.protonet`. Each query is
    classified by the output at the last position of the sequence ``support
    (embedding ⊕ one-hot label), query (embedding ⊕ zeros)``; see the module
    docstring for how the queries share the support part. Parameters are
    ``{"embedding": ..., "snail": ...}``.

    Args:
      ways: ``N``; the logits have ``N`` columns and the support labels lie in ``0..N-1``.
      shots: ``K``; the support set must hold exactly ``N·K`` examples.
      embedding: the image embedding; Conv-4 with 64 filters (the paper's, Appendix) by
        default. Any :class:`~metajax.nets.backbones.Model` giving flat ``[n, d]`` features works.
      filters: ``D`` of the TC blocks; 128 in the paper's Omniglot network.
      attention: ``(key_size, value_size)`` of the attention blocks, in order; a TC
        block sits between consecutive ones. The paper's Omniglot network by default.
      shuffle_support: shuffle the support positions with the key in ``loss`` (and in
        ``predict`` when a key is given), so the model cannot learn the sampler's
        label order.

    Example:
      >>> import jax
      >>> from metajax.core.episodes import sample_episode
      >>> from metajax.nets.backbones import mlp
      >>> pool = jax.random.uniform(jax.random.key(0), (10, 8, 6))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=3, shots=2, queries=2)
      >>> learner = snail(ways=3, shots=2, embedding=mlp(hidden=(8,)), filters=4,
      ...                 attention=((4, 2), (4, 2)))
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = learner.loss(params, episode, jax.random.key(3))
      >>> learner.predict(params, episode.support, episode.query.x, jax.random.key(4)).shape
      (6, 3)
    """
    check_int("ways", ways, 1)
    check_int("shots", shots, 1)
    check_int("filters", filters, 1)
    check_model("embedding", embedding, optional=True)
    check_bool("shuffle_support", shuffle_support)
    try:
        pairs = tuple(tuple(pair) for pair in attention)
    except TypeError:  # not a sequence of sequences: refused just below
        pairs = ()
    if not pairs or any(
        len(pair) != 2
        or any(not isinstance(s, int | np.integer) or isinstance(s, bool) or s < 1 for s in pair)
        for pair in pairs
    ):
        raise ValueError(
            "attention must be a non-empty sequence of (key_size, value_size) pairs of "
            f"integers >= 1, got {attention!r}"
        )
    attention = pairs
    embedding = conv4() if embedding is None else embedding
    n_support = ways * shots
    network = SNAILSequence(
        length=n_support + 1, outputs=ways, filters=filters, attention=attention
    )

    def check_support(support: Split, query_x, query_y=None):
        """The support set is the fixed ``ways * shots`` positions, labelled ``0..ways-1``."""
        del query_x, query_y
        if support.x.shape[0] != n_support:
            raise ValueError(
                f"support must hold ways * shots = {ways} * {shots} = {n_support} examples, "
                f"got {support.x.shape[0]}"
            )
        check_label_values("support.y", support.y, ways)

    def sequences(params, support: Split, query_x, key):
        embedded = embedding.apply(params["embedding"], jnp.concatenate([support.x, query_x]))
        if embedded.ndim != 2:
            raise ValueError(
                f"embedding must give flat features [n, d], got shape {embedded.shape}"
            )
        return episode_sequences(
            embedded[:n_support],
            support.y,
            embedded[n_support:],
            ways=ways,
            key=key if shuffle_support else None,
        )

    def init(key, episode: Episode):
        embed_key, network_key = jax.random.split(key)
        params = {"embedding": embedding.init(embed_key, episode.support.x)}
        prefix, tail = sequences(params, episode.support, episode.query.x, None)
        params["snail"] = network.init(network_key, prefix, tail)["params"]
        return params

    def predict(params, support: Split, query_x, key=None):
        prefix, tail = sequences(params, support, query_x, key)
        return network.apply({"params": params["snail"]}, prefix, tail)[1]

    def loss(params, episode: Episode, key=None):
        logits = predict(params, episode.support, episode.query.x, key)
        return classification_loss(logits, episode.query.y)

    learner = Learner(init=init, loss=loss, predict=predict)
    return checked(learner, min_query=1, extra=check_support)
