"""Meta Networks (Munkhdalai & Yu, ICML 2017).

MetaNet adapts by *generating* weights rather than by descending on them. Two
networks have slow weights, meta-trained across tasks, and receive fast weights,
generated per task or per example from loss gradients (the "meta information"):

* the base learner ``b`` (slow weights ``W``) classifies;
* the dynamic representation learner ``u`` (slow weights ``Q``) embeds inputs into
  keys for a memory;
* the meta learner is two small networks applied coordinate-wise to preprocessed
  gradients: ``m`` (an MLP, weights ``Z``) maps the gradient of ``b``'s loss on one
  support example to that example's fast weights ``W*_i``, and ``d`` (an LSTM,
  weights ``G``) maps the gradients of ``u``'s representation loss on ``T`` batches of
  support examples, read as a sequence, to task-level fast weights ``Q*``.

Per task (§3 and Algorithm 1): (1) ``Q* = d(G, {∇_Q loss_emb(u(Q, x'_t), y'_t)})``;
(2) for every support example, ``W*_i = m(Z, ∇_W loss(b(W, x_i), y_i))`` is written
to a memory under the key ``r_i = u(Q, Q*, x_i)``; (3) a query is embedded,
``r = u(Q, Q*, x)``, attends over the keys by a softmax of cosine similarities, reads
its fast weights ``W* = Σ_i a_i W*_i`` and is classified by ``b(W, W*, x)``. Both
``b`` and ``u`` use *layer augmentation* (§3.3, Fig. 2): every augmented layer runs
its slow weights and its fast weights on the same input, applies the nonlinearity
to each, and sums the two. The query cross-entropy is differentiated through all of
it, including (unless ``first_order``) through the gradients that generate the fast
weights.

Defaults follow the paper's Omniglot model (§4) as the authors' released Chainer
code builds it (``MetaNetFull``):

* ``b`` and ``u``: five blocks of 3x3 convolution with 64 filters (padded, no bias)
  and ReLU, each followed by 2x2 max-pooling (ceil mode, as Chainer's default
  ``cover_all`` pooling: 28 -> 14 -> 7 -> 4 -> 2 -> 1), then a fully connected layer
  of 64 with ReLU and an output layer of ``ways`` units; no batch norm, no biases.
  Every layer of ``b`` is augmented; ``u``'s key is the augmented fully connected
  layer of 64 before its ReLU, and ``u``'s output layer is only used for its
  representation loss, the cross-entropy of ``u``'s classifier on support labels.
* ``m``: 2 -> 20 -> 20 -> 1 with ReLUs; ``d``: an LSTM of 20 units and a 2 -> 1 linear
  read-out of its last state. Each has one copy for convolution kernels and one for
  fully connected weights.
* Gradients are preprocessed as in Andrychowicz et al. 2016 with ``k = 7`` into
  ``(max(log(|g| + eps) / k, -1), clip(g e^k, -1, 1))``.
* ``T = 5`` representation-loss batches (the support set split into five parts).
* Adam at 1e-3 with gradient clipping at 10, one episode per update, 10 queries
  per class (the released training script); Table 1: 98.95% (5-way 1-shot) and
  97.00% (20-way 1-shot) on Omniglot (Vinyals split).

Deviations, and why. ``m`` and ``d`` are applied coordinate-wise to inputs that
differ little between coordinates, so at initialisation they give nearly the same
value to every coordinate of a fast kernel: with the released code's LeCun-initialised
read-out that value is O(1), and five stacked layers of such kernels overflow; if it
is negative, a fast convolution over non-negative inputs is negative everywhere, its
ReLU is dead and no gradient ever reaches that network again. So here the read-outs
of ``m`` and ``d`` start near zero (normal, std 1e-3), and each has a learned linear
path from its input (for ``d``, the mean over its sequence) that starts as a small
sign-descent step, ``-0.01 clip(g e^k, -1, 1)``: fast weights start small, with the
signs of a descent step, so that every fast path starts alive. Fast
weights are generated for the layers that use them only (the released code also
generates, and discards, fast weights for ``u``'s output layer). The query loss is
a mean over queries (the released code sums it). In the released code the meta
information is a constant (it passes through NumPy), which ``first_order=True``
reproduces; by default the gradient flows through it (second order).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from metajax.core.distances import cosine_similarity
from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import classification_loss, cross_entropy
from metajax.core.validation import (
    check_bool,
    check_classes,
    check_float,
    check_int,
    check_int_sequence,
)
from metajax.nets.backbones import im2col_conv


def log_and_sign(g: jax.Array, k: float = 7.0) -> jax.Array:
    """Gradient preprocessing of Andrychowicz et al. 2016: ``[..., 2]`` log-magnitude and sign.

    Args:
      g: gradients, any shape.
      k: gradients smaller than ``e^-k`` in magnitude give log feature -1 and a
        sign feature proportional to them.

    Example:
      >>> import jax.numpy as jnp
      >>> [round(float(v), 3) for v in log_and_sign(jnp.array([1.0, -1e-5])).ravel()]
      [0.0, 1.0, -1.0, -0.011]
    """
    log = jnp.maximum(jnp.log(jnp.abs(g) + jnp.finfo(g.dtype).eps) / k, -1.0)
    sign = jnp.clip(g * np.exp(k), -1.0, 1.0)
    return jnp.stack([log, sign], axis=-1)


def max_pool_ceil(x: jax.Array) -> jax.Array:
    """2x2 max-pool with stride 2 that keeps a last odd row/column (Chainer's ``cover_all``)."""
    n, h, w, c = x.shape
    x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
    return x.reshape(n, (h + 1) // 2, 2, (w + 1) // 2, 2, c).max(axis=(2, 4))


# The fast weights' starting scale: about a quarter of the slow path's activations
# for a 3x3x64 kernel whose signs are those of its gradient.
SIGN_STEP = 1e-2


def _identity(x):
    return x


def _conv(x, kernel):
    # As shifted copies and a matmul: per-example gradients and per-query fast kernels
    # are then batched matmuls under vmap, not grouped convolutions (slow on CPU).
    return im2col_conv(x, kernel, (1, 1), "SAME")


class AugmentedNet(nn.Module):
    """``b`` or ``u``: conv blocks, then fully connected layers, all layer-augmented.

    ``fast`` maps layer names (``conv_i``, ``dense_i``, ``output``) to fast weights
    shaped like the slow ones; a layer with fast weights computes
    ``act(slow(x)) + act(fast(x))`` (§3.3), one without computes ``act(slow(x))``.
    With ``embed=True`` the network stops at the last hidden layer, before its
    nonlinearity (the key of ``u``).
    """

    filters: int = 64
    blocks: int = 5
    hidden: tuple[int, ...] = (64,)
    outputs: int = 5

    @nn.compact
    def __call__(self, x, fast=None, embed: bool = False):
        fast = {} if fast is None else fast

        def augmented(name, shape, linear, h, act):
            slow = self.param(name, nn.initializers.lecun_normal(), shape, h.dtype)
            out = act(linear(h, slow))
            if name in fast:
                out = out + act(linear(h, fast[name]))
            return out

        for i in range(self.blocks):
            shape = (3, 3, x.shape[-1], self.filters)
            x = max_pool_ceil(augmented(f"conv_{i}", shape, _conv, x, nn.relu))
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden):
            act = _identity if embed and i == len(self.hidden) - 1 else nn.relu
            x = augmented(f"dense_{i}", (x.shape[-1], width), jnp.matmul, x, act)
        if embed:
            return x
        return augmented("output", (x.shape[-1], self.outputs), jnp.matmul, x, _identity)


def _sign_step(key, shape, dtype=jnp.float32):
    # Weights (0, -SIGN_STEP) on (log, sign): a small sign-descent step.
    del key
    return jnp.zeros(shape, dtype).at[1].set(-SIGN_STEP)


class CoordinateMLP(nn.Module):
    """``m``: an MLP from one coordinate's preprocessed gradient ``[..., 2]`` to a fast weight.

    Plus a linear path from the input, which starts as a small sign-descent step (see
    the module docstring).
    """

    hidden: tuple[int, ...] = (20, 20)

    @nn.compact
    def __call__(self, g):
        direct = nn.Dense(1, use_bias=False, kernel_init=_sign_step, name="direct")(g)
        for width in self.hidden:
            g = nn.relu(nn.Dense(width)(g))
        return (nn.Dense(1, kernel_init=nn.initializers.normal(1e-3))(g) + direct)[..., 0]


class CoordinateLSTM(nn.Module):
    """``d``: an LSTM over a sequence ``[T, coordinates, 2]`` of preprocessed gradients.

    Every coordinate is its own sequence (shared weights); a linear read-out of the
    last hidden state, plus a linear path from the sequence's mean input that starts as
    a small sign-descent step, is the coordinate's fast weight.
    """

    hidden: int = 20

    @nn.compact
    def __call__(self, g):
        zeros = jnp.zeros((g.shape[1], self.hidden), g.dtype)  # carry in the input's dtype
        rnn = nn.RNN(nn.OptimizedLSTMCell(self.hidden), time_major=True)
        states = rnn(g, initial_carry=(zeros, zeros))
        direct = nn.Dense(1, use_bias=False, kernel_init=_sign_step, name="direct")(g.mean(0))
        return (nn.Dense(1, kernel_init=nn.initializers.normal(1e-3))(states[-1]) + direct)[..., 0]


def _kind(leaf) -> str:
    return "conv" if leaf.ndim == 4 else "dense"


def _generate(network, params, grads: dict, k: float) -> dict:
    """Applies ``network[kind]`` coordinate-wise to stacked gradients ``{name: [s, *shape]}``.

    The leaves of one kind are flattened into one vector of coordinates, so that each
    kind is a single call; ``s`` is a leading axis of examples (``m``) or of
    sequence steps (``d``, which reduces it).
    """
    out = {}
    for kind in ("conv", "dense"):
        names = sorted(n for n, g in grads.items() if _kind(g[0]) == kind)
        if not names:
            continue
        lead = grads[names[0]].shape[0]
        flat = jnp.concatenate([grads[n].reshape(lead, -1) for n in names], axis=1)
        fast = network[kind].apply({"params": params[kind]}, log_and_sign(flat, k))
        sizes = np.cumsum([grads[n][0].size for n in names])[:-1]
        for name, part in zip(names, jnp.split(fast, sizes, axis=-1), strict=True):
            out[name] = part.reshape(part.shape[:-1] + grads[name].shape[1:])
    return out


def cosine_attention(queries: jax.Array, keys: jax.Array, eps: float = 1e-6) -> jax.Array:
    """``[n_query, n_memory]``: a softmax over the memory of cosine similarities (no temperature).

    Example:
      >>> import jax.numpy as jnp
      >>> keys = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> [round(float(a), 3) for a in cosine_attention(keys[:1], keys)[0]]
      [0.731, 0.269]
    """
    return jax.nn.softmax(cosine_similarity(queries, keys, eps), axis=-1)


def meta_networks(
    *,
    ways: int,
    filters: int = 64,
    blocks: int = 5,
    hidden: tuple[int, ...] = (64,),
    meta_hidden: int = 20,
    representation_steps: int = 5,
    preprocess_k: float = 7.0,
    first_order: bool = False,
) -> Learner:
    """Meta Networks (Munkhdalai & Yu 2017), one task at a time.

    ``init`` returns ``{"base": W, "embedding": Q, "m": Z, "d": G}``, the slow weights
    of ``b`` and ``u`` and the weights of ``m`` and ``d`` (one network per kind of
    layer, ``conv`` and ``dense``). ``predict`` returns logits ``[n_query, ways]``:
    the base learner's output with the fast weights each query reads from memory.

    Args:
      ways: classes per episode, the width of ``b``'s and ``u``'s output layers;
        support and query labels must lie in ``0..ways-1``.
      filters: channels of every convolution (64 in the paper, §4).
      blocks: conv blocks of ``b`` and ``u`` (5 in the released code); 0 gives MLPs
        over flattened inputs.
      hidden: widths of the fully connected hidden layers (``(64,)``); the last one,
        before its ReLU, is ``u``'s key.
      meta_hidden: width of ``m``'s two hidden layers and of ``d``'s LSTM (20).
      representation_steps: ``T``, the number of batches the support set is split
        into for ``u``'s representation loss, the length of ``d``'s input sequence
        (5 in the released code; fewer if the support set is smaller).
      preprocess_k: ``k`` of the gradient preprocessing (7 in the released code).
      first_order: treat the meta information (the gradients) as constants, as the
        released code does, instead of differentiating through it.

    Example:
      >>> import jax
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jax.random.uniform(jax.random.key(0), (6, 4, 8, 8, 1))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=3, shots=1, queries=2)
      >>> learner = meta_networks(ways=3, filters=4, blocks=2, hidden=(8,))
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = jax.jit(learner.loss)(params, episode, jax.random.key(3))
      >>> jax.jit(learner.predict)(params, episode.support, episode.query.x, None).shape
      (6, 3)
    """
    for name, value, low in (
        ("ways", ways, 1),
        ("filters", filters, 1),
        ("blocks", blocks, 0),
        ("meta_hidden", meta_hidden, 1),
        ("representation_steps", representation_steps, 1),
    ):
        check_int(name, value, low)
    hidden = check_int_sequence("hidden", hidden, 1)
    check_float("preprocess_k", preprocess_k, 0, low_open=True)
    check_bool("first_order", first_order)
    net = AugmentedNet(filters=filters, blocks=blocks, hidden=hidden, outputs=ways)
    kinds = ("conv", "dense") if blocks else ("dense",)
    m = {kind: CoordinateMLP(hidden=(meta_hidden, meta_hidden)) for kind in kinds}
    d = {kind: CoordinateLSTM(hidden=meta_hidden) for kind in kinds}

    def check_support(support: Split, query_x, query_y=None):
        """Images for conv blocks; at least ``ways`` support examples, labels ``0..ways-1``."""
        del query_x, query_y
        if blocks and support.x.ndim != 4:
            raise ValueError(
                f"support.x must be images [n, height, width, channels] (rank 4) for "
                f"blocks={blocks}, got shape {support.x.shape}"
            )
        check_classes(support, ways)

    def example_gradients(params, support: Split):
        """Per-example gradients of the slow-weight loss, ``{name: [n, *shape]}``."""

        def example_loss(slow, x, y):
            logits = net.apply({"params": slow}, x[None])[0]
            return cross_entropy(logits, y)

        grads = jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, support.x, support.y)
        return jax.lax.stop_gradient(grads) if first_order else grads

    def task_fast_weights(params, support: Split):
        """``Q* = d(G, ∇_1..∇_T)``: fast weights of ``u``'s conv and hidden layers."""
        grads = example_gradients(params["embedding"], support)
        grads.pop("output")  # u's key never reaches its output layer
        n = support.x.shape[0]
        steps = min(representation_steps, n)
        # Batch t holds examples t, t + T, ...; its loss gradient is their mean gradient.
        member = np.arange(n)[None, :] % steps == np.arange(steps)[:, None]
        batches = jnp.asarray(member / member.sum(1, keepdims=True), support.x.dtype)
        sequences = jax.tree.map(lambda g: jnp.tensordot(batches, g, axes=1), grads)
        return _generate(d, params["d"], sequences, preprocess_k)

    def predict(params, support: Split, query_x, key=None):
        del key  # Deterministic given the episode.
        n = support.x.shape[0]
        task_fast = task_fast_weights(params, support)
        keys = net.apply(
            {"params": params["embedding"]},
            jnp.concatenate([support.x, query_x]),
            task_fast,
            embed=True,
        )
        memory = _generate(m, params["m"], example_gradients(params["base"], support), preprocess_k)
        attention = cosine_attention(keys[n:], keys[:n])
        read = jax.tree.map(lambda w: jnp.tensordot(attention, w, axes=1), memory)

        def classify(x, fast):
            return net.apply({"params": params["base"]}, x[None], fast)[0]

        return jax.vmap(classify)(query_x, read)

    def init(key, episode: Episode):
        base_key, embedding_key, m_key, d_key = jax.random.split(key, 4)
        x = episode.support.x
        coordinate = jnp.zeros((1, 2), x.dtype)
        return {
            "base": net.init(base_key, x)["params"],
            "embedding": net.init(embedding_key, x)["params"],
            "m": {
                kind: m[kind].init(k, coordinate)["params"]
                for kind, k in zip(kinds, jax.random.split(m_key, len(kinds)), strict=True)
            },
            "d": {
                kind: d[kind].init(k, coordinate[None])["params"]
                for kind, k in zip(kinds, jax.random.split(d_key, len(kinds)), strict=True)
            },
        }

    def loss(params, episode: Episode, key=None):
        logits = predict(params, episode.support, episode.query.x, key)
        return classification_loss(logits, episode.query.y)

    return checked(Learner(init=init, loss=loss, predict=predict), extra=check_support)
