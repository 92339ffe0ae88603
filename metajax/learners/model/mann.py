"""Memory-augmented neural networks (Santoro, Bartunov, Botvinick, Wierstra & Lillicrap, ICML 2016).

A MANN is an LSTM controller with an external memory ``M`` of ``slots x size``,
read by content and written by *least recently used access* (LRUA, §3.2). It
meta-learns by the label-offset sequence protocol of :mod:`metajax.learners.model.sequence`: it
sees every example of an episode in turn, with the previous step's label, and must
bind inputs to labels within the episode in its memory.

One step, with ``n`` read heads each emitting a key ``k_t`` and a write gate ``α_t``
from the controller state ``h_t``:

* write weights (eq. 7): ``w^w_t = σ(α_t) w^r_{t-1} + (1 - σ(α_t)) w^lu_{t-1}``, a
  learned choice between the slots just read and the least used ones;
* write (eq. 8): the least used slot (by ``w^u_{t-1}``) is zeroed, then
  ``M_t(i) = M_{t-1}(i) + w^w_t(i) k_t`` (summed over heads);
* read (eqs. 2-4): ``w^r_t(i) = softmax_i(K(k_t, M_t(i)))`` with ``K`` the cosine
  similarity, and ``r_t = Σ_i w^r_t(i) M_t(i)``;
* usage (eq. 5): ``w^u_t = γ w^u_{t-1} + w^r_t + w^w_t`` (summed over heads);
* least used (eq. 6): ``w^lu_t(i) = 1`` if ``w^u_t(i) <= m(w^u_t, n)``, the ``n``-th
  smallest usage, else 0.

The controller reads ``[x_t, y_{t-1}, r_{t-1}]`` and the class distribution is a
softmax over a linear map of ``[h_t, r_t]``.

Paper facts used for the defaults (§4 and the appendix as we read them): an LSTM
controller of 200 units, a memory of 128 slots x 40, 4 read heads, one-hot labels
for 5-way episodes, Omniglot images down-sampled to 20x20, minibatches of 16
episodes and RMSProp at 1e-4. Table 1 (5 ways, 10 instances per class): MANN
36.4 / 82.8 / 91.0 / 92.6 / 94.9 / 98.1 % at the 1st / 2nd / 3rd / 4th / 5th / 10th
instance; LSTM 24.4 / 49.5 / 55.3 / 61.0 / 63.6 / 62.5 %.

Choices of ours where the paper is silent or where we deviate (say so when comparing):

* ``γ = 0.95`` (``usage_decay``): the paper gives no value in the text; 0.95 is what
  the public re-implementations use.
* Keys pass through ``tanh``, as in those re-implementations.
* Ties in ``m(w^u_t, n)`` are broken by slot index, so exactly ``n`` slots are least
  used. Untouched slots all have the same usage; with the paper's ``<=`` every one of
  them would be "least used" and a write would be smeared over the empty memory.
* The initial state is an empty memory with zero usage and zero read weights and
  reads, so the first write goes to slots ``0..n-1`` through ``w^lu_0``.
* ``key_strength=True`` (default) multiplies each head's cosine by a learned
  ``β_t = 1 + softplus(·) >= 1`` before the softmax, as the NTM's key strength
  (Graves et al. 2014, eq. 5). Plain cosine (the paper's, ``key_strength=False``)
  lies in [-1, 1], so a softmax over 128 slots cannot focus on one: a key equal to a
  stored row gets at most ``e / (e + 127 e^{-1})`` of the weight. This is a deviation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from metajax.core.distances import cosine_similarity
from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import cross_entropy
from metajax.core.validation import check_bool, check_int, check_label_values
from metajax.learners.model.sequence import (
    Sequence,
    _episode_sequence,
    _split_sequence,
    check_length,
)

Array = jax.Array

MAX_REPORTED_INSTANCE = 10


class MemoryState(NamedTuple):
    """Everything a MANN carries from one step to the next (all for one task).

    Attributes:
      memory: ``M_{t-1}``, ``[slots, size]``.
      usage: ``w^u_{t-1}``, ``[slots]``.
      read_weights: ``w^r_{t-1}``, ``[heads, slots]``.
      least_used: ``w^lu_{t-1}``, ``[slots]``, 1 on the ``heads`` least used slots.
      reads: ``r_{t-1}``, ``[heads, size]``.
      lstm: the controller's ``(c, h)``, each ``[controller]``.
    """

    memory: Array
    usage: Array
    read_weights: Array
    least_used: Array
    reads: Array
    lstm: tuple[Array, Array]


def initial_memory_state(
    *, slots: int, size: int, heads: int, controller: int, dtype=jnp.float32
) -> MemoryState:
    """The state before step 1: empty memory, zero usage, ``w^lu_0`` on slots ``0..heads-1``.

    Example:
      >>> s = initial_memory_state(slots=4, size=3, heads=2, controller=5)
      >>> s.memory.shape, s.least_used.tolist()
      ((4, 3), [1.0, 1.0, 0.0, 0.0])
    """
    usage = jnp.zeros((slots,), dtype)
    zeros = jnp.zeros((controller,), dtype)
    return MemoryState(
        memory=jnp.zeros((slots, size), dtype),
        usage=usage,
        read_weights=jnp.zeros((heads, slots), dtype),
        least_used=least_used(usage, heads),
        reads=jnp.zeros((heads, size), dtype),
        lstm=(zeros, zeros),
    )


def cosine_read_weights(keys: Array, memory: Array, strength: Array | float = 1.0) -> Array:
    """Read weights ``w^r = softmax_i(β K(k, M(i)))``, ``[..., slots]`` (Santoro et al. eqs. 2-3).

    Args:
      keys: ``[size]`` or ``[heads, size]``.
      memory: ``[slots, size]``.
      strength: ``β``, a scalar or one per head; 1 is the paper's plain cosine.

    Example:
      >>> import jax.numpy as jnp
      >>> memory = jnp.eye(3)
      >>> w = cosine_read_weights(memory[1], memory, strength=50.0)
      >>> round(float(w[1]), 6)
      1.0
    """
    strength = jnp.asarray(strength, keys.dtype)
    if strength.ndim and keys.ndim > 1:
        strength = strength[..., None]
    return jax.nn.softmax(strength * cosine_similarity(keys, memory), axis=-1)


def least_used(usage: Array, n: int) -> Array:
    """``w^lu``: 1 on the ``n`` slots of least usage, else 0 (eq. 6); ties go to lower slots.

    Example:
      >>> import jax.numpy as jnp
      >>> least_used(jnp.array([0.5, 0.1, 0.9, 0.1]), 2).tolist()
      [0.0, 1.0, 0.0, 1.0]
    """
    if not isinstance(n, int) or not 1 <= n <= usage.shape[-1]:
        raise ValueError(f"n must be an integer in [1, {usage.shape[-1]}] (slots), got {n!r}")
    return _least_used(usage, n)


def _least_used(usage: Array, n: int) -> Array:
    """:func:`least_used` unchecked: :func:`mann` has checked ``read_heads <= memory_slots``."""
    # top_k keeps the lower index first among equals, so exactly n slots are chosen.
    _, slots = jax.lax.top_k(-jax.lax.stop_gradient(usage), n)
    return jnp.sum(jax.nn.one_hot(slots, usage.shape[-1], dtype=usage.dtype), axis=-2)


def lru_write_weights(gate: Array, previous_read_weights: Array, previous_least_used: Array):
    """``w^w_t = σ(α) w^r_{t-1} + (1 - σ(α)) w^lu_{t-1}`` (eq. 7), one row per head.

    Args:
      gate: ``α``, ``[heads]`` (or a scalar for one head).
      previous_read_weights: ``w^r_{t-1}``, ``[heads, slots]`` (or ``[slots]``).
      previous_least_used: ``w^lu_{t-1}``, ``[slots]``, shared by the heads.

    Example:
      >>> import jax.numpy as jnp
      >>> w = lru_write_weights(jnp.array([0.0]), jnp.array([[1.0, 0, 0]]), jnp.array([0, 0, 1.0]))
      >>> w.tolist()
      [[0.5, 0.0, 0.5]]
    """
    sigma = jax.nn.sigmoid(gate)[..., None]
    return sigma * previous_read_weights + (1.0 - sigma) * previous_least_used


def update_usage(usage: Array, read_weights: Array, write_weights: Array, decay: float) -> Array:
    """``w^u_t = γ w^u_{t-1} + w^r_t + w^w_t`` (eq. 5), the weights summed over heads.

    Example:
      >>> import jax.numpy as jnp
      >>> update_usage(jnp.array([1.0, 0.0]), jnp.array([[0.5, 0.5]]), jnp.array([[0.0, 1.0]]),
      ...              0.5).tolist()
      [1.0, 1.5]
    """
    read_weights = jnp.atleast_2d(read_weights)
    write_weights = jnp.atleast_2d(write_weights)
    return decay * usage + read_weights.sum(0) + write_weights.sum(0)


def write_memory(memory: Array, previous_usage: Array, write_weights: Array, keys: Array):
    """Clears the least used slot of ``w^u_{t-1}``, then ``M_t(i) = M(i) + Σ_h w^w(i) k`` (eq. 8).

    Args:
      memory: ``M_{t-1}``, ``[slots, size]``.
      previous_usage: ``w^u_{t-1}``, ``[slots]``; its least used slot is cleared first.
      write_weights: ``[heads, slots]`` (or ``[slots]``).
      keys: what each head writes, ``[heads, size]`` (or ``[size]``).

    Example:
      >>> import jax.numpy as jnp
      >>> m = write_memory(jnp.ones((3, 2)), jnp.array([1.0, 0.0, 2.0]),
      ...                  jnp.array([0.0, 1.0, 0.0]), jnp.array([5.0, 6.0]))
      >>> m.tolist()
      [[1.0, 1.0], [5.0, 6.0], [1.0, 1.0]]
    """
    cleared = memory * (1.0 - _least_used(previous_usage, 1))[:, None]
    return cleared + jnp.atleast_2d(write_weights).T @ jnp.atleast_2d(keys)


class MANNCell(nn.Module):
    """One step of a MANN: ``(state, [x_t, y_{t-1}]) -> (state, logits_t)``.

    Attributes:
      ways: classes (the width of the output).
      slots: memory slots.
      size: memory width.
      heads: read heads (also the ``n`` of the least-used rule).
      controller: LSTM units.
      usage_decay: ``γ``.
      key_strength: learn a sharpening ``β_t >= 1`` per head (a deviation; see module doc).
    """

    ways: int
    slots: int = 128
    size: int = 40
    heads: int = 4
    controller: int = 200
    usage_decay: float = 0.95
    key_strength: bool = True

    @nn.compact
    def __call__(self, state: MemoryState, inputs: Array):
        x = jnp.concatenate([inputs, state.reads.reshape(-1)], axis=-1)
        (c, h), _ = nn.OptimizedLSTMCell(self.controller, name="controller")(state.lstm, x)
        keys = jnp.tanh(nn.Dense(self.heads * self.size, name="keys")(h))
        keys = keys.reshape(self.heads, self.size)
        gate = nn.Dense(self.heads, name="write_gate")(h)
        strength = 1.0
        if self.key_strength:
            strength = 1.0 + jax.nn.softplus(nn.Dense(self.heads, name="key_strength")(h))
        write_weights = lru_write_weights(gate, state.read_weights, state.least_used)
        memory = write_memory(state.memory, state.usage, write_weights, keys)
        read_weights = cosine_read_weights(keys, memory, strength)
        reads = read_weights @ memory
        usage = update_usage(state.usage, read_weights, write_weights, self.usage_decay)
        logits = nn.Dense(self.ways, name="output")(
            jnp.concatenate([h, reads.reshape(-1)], axis=-1)
        )
        new_state = MemoryState(
            memory=memory,
            usage=usage,
            read_weights=read_weights,
            least_used=_least_used(usage, self.heads),
            reads=reads,
            lstm=(c, h),
        )
        return new_state, logits


def _scan(cell):
    """The cell run over a sequence ``[T, d]`` by ``nn.scan`` (a ``lax.scan``), weights shared."""
    return nn.scan(
        cell, variable_broadcast="params", split_rngs={"params": False}, in_axes=0, out_axes=0
    )


class MANN(nn.Module):
    """A MANN over a sequence: ``(state, inputs [T, d]) -> (final state, logits [T, ways])``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> net = MANN(ways=3, slots=6, size=4, heads=2, controller=8)
      >>> state = initial_memory_state(slots=6, size=4, heads=2, controller=8)
      >>> params = jax.jit(net.init)(jax.random.key(0), state, jnp.ones((5, 7)))
      >>> final, logits = jax.jit(net.apply)(params, state, jnp.ones((5, 7)))
      >>> logits.shape, final.memory.shape
      ((5, 3), (6, 4))
    """

    ways: int
    slots: int = 128
    size: int = 40
    heads: int = 4
    controller: int = 200
    usage_decay: float = 0.95
    key_strength: bool = True

    @nn.compact
    def __call__(self, state: MemoryState, inputs: Array):
        cell = _scan(MANNCell)(
            ways=self.ways,
            slots=self.slots,
            size=self.size,
            heads=self.heads,
            controller=self.controller,
            usage_decay=self.usage_decay,
            key_strength=self.key_strength,
            name="cell",
        )
        return cell(state, inputs)


class _LSTMWeights(nn.Module):
    """The weights of a Flax ``OptimizedLSTMCell``, with its names and initialisers,
    concatenated over the gates (i, f, g, o): ``(input kernel, recurrent kernel, bias)``."""

    hidden: int

    @nn.compact
    def __call__(self, features: int):
        gates = "ifgo"
        lecun, orthogonal = nn.initializers.lecun_normal(), nn.initializers.orthogonal()
        inputs = [_Dense(self.hidden, False, lecun, name=f"i{g}")(features)[0] for g in gates]
        recurrent = [
            _Dense(self.hidden, True, orthogonal, name=f"h{g}")(self.hidden) for g in gates
        ]
        return (
            jnp.concatenate(inputs, axis=-1),
            jnp.concatenate([k for k, _ in recurrent], axis=-1),
            jnp.concatenate([b for _, b in recurrent], axis=-1),
        )


class _Dense(nn.Module):
    """A kernel ``[rows, features]`` (and bias) as ``OptimizedLSTMCell`` names them."""

    features: int
    use_bias: bool
    kernel_init: Callable

    @nn.compact
    def __call__(self, rows: int):
        kernel = self.param("kernel", self.kernel_init, (rows, self.features))
        bias = (
            self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        )
        return kernel, bias


def _lstm_step(carry, gate_inputs, kernel, bias):
    """One ``OptimizedLSTMCell`` step given its input's share of the gates (i, f, g, o)."""
    c, h = carry
    i, f, g, o = jnp.split(gate_inputs + h @ kernel + bias, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c_new = f * c + i * g
    tanh_c = jnp.tanh(c_new)
    return (c_new, o * tanh_c), (i, f, g, o, c, tanh_c)


@jax.custom_jvp
def lstm_recurrence(gate_inputs, kernel, bias, c, h):
    """An LSTM over ``gate_inputs [T, 4H]`` (each step's input projection, gates i, f, g, o)
    from ``(c, h)``: ``((c_T, h_T), hidden [T, H])``.

    Its derivative rule gives the same derivatives as differentiating the loop, to any
    order, but reverse mode does not accumulate the recurrent kernel's gradient one outer
    product per step: the kernel's tangent enters as one matmul over all steps
    (``h_{t-1} @ dW``) before the tangent loop, so its transpose is one matmul after the
    backward loop. On the CPU the LSTM baseline's meta-step is 1.15x faster for it.
    """

    def step(carry, x):
        carry, _ = _lstm_step(carry, x, kernel, bias)
        return carry, carry[1]

    return jax.lax.scan(step, (c, h), gate_inputs)


@functools.partial(lstm_recurrence.defjvp, symbolic_zeros=True)
def _lstm_recurrence_jvp(primals, tangents):
    gate_inputs, kernel, bias, c0, h0 = primals
    inputs_dot, kernel_dot, bias_dot, c0_dot, h0_dot = tangents

    def step(carry, x):
        carry, saved = _lstm_step(carry, x, kernel, bias)
        return carry, (carry[1], saved)

    (c, h), (hidden, (i, f, g, o, c_prev, tanh_c)) = jax.lax.scan(step, (c0, h0), gate_inputs)

    def given(tangent, primal):
        return jnp.zeros_like(primal) if isinstance(tangent, SymbolicZero) else tangent

    # Every term of the gates' tangent that does not pass through the recurrence.
    drive = given(inputs_dot, gate_inputs)
    if not isinstance(bias_dot, SymbolicZero):
        drive = drive + bias_dot
    if not isinstance(kernel_dot, SymbolicZero):
        drive = drive + jnp.concatenate([h0[None], hidden[:-1]]) @ kernel_dot
    # d(gate activations)/d(pre-activations), times what each multiplies in c and h.
    slopes = jnp.concatenate(
        [i * (1 - i) * g, f * (1 - f) * c_prev, i * (1 - g * g), o * (1 - o) * tanh_c], axis=-1
    )
    dh_dc = o * (1 - tanh_c * tanh_c)

    def tangent_step(carry, xs):
        dc, dh = carry
        drive_t, slopes_t, f_t, dh_dc_t = xs
        di, df, dg, do = jnp.split((drive_t + dh @ kernel) * slopes_t, 4, axis=-1)
        dc = f_t * dc + di + df + dg
        dh = dh_dc_t * dc + do
        return (dc, dh), dh

    (dc, dh), hidden_dot = jax.lax.scan(
        tangent_step, (given(c0_dot, c0), given(h0_dot, h0)), (drive, slopes, f, dh_dc)
    )
    return ((c, h), hidden), ((dc, dh), hidden_dot)


class _LSTMSequence(nn.Module):
    """A Flax ``OptimizedLSTMCell`` over a sequence and a linear layer on every hidden state.

    The input projection of every step is one matmul before the loop, and the output
    layer one after it: inside the loop only the recurrent matmul remains. On the CPU
    that makes the LSTM baseline's meta-step 1.5x faster (``benchmarks/torch_speed``),
    and the input kernel's gradient one matmul instead of a sum over time steps.
    :func:`lstm_recurrence` does the same for the recurrent kernel's gradient.
    """

    ways: int
    hidden: int

    @nn.compact
    def __call__(self, state, inputs):
        input_kernel, recurrent_kernel, bias = _LSTMWeights(self.hidden, name="lstm")(
            inputs.shape[-1]
        )
        state, hidden = lstm_recurrence(inputs @ input_kernel, recurrent_kernel, bias, *state)
        return state, nn.Dense(self.ways, name="output")(hidden)


class LSTMBaseline(nn.Module):
    """The LSTM baseline over a sequence: ``((c, h), [T, d]) -> ((c, h), logits [T, ways])``.

    Its parameters are those of a Flax ``OptimizedLSTMCell`` named ``lstm`` and a
    ``Dense`` named ``output``, under ``cell``.
    """

    ways: int
    hidden: int = 200

    @nn.compact
    def __call__(self, state, inputs):
        return _LSTMSequence(ways=self.ways, hidden=self.hidden, name="cell")(state, inputs)


def _step_inputs(x: Array, previous_label: Array, dtype) -> Array:
    """``[T, features + ways]``: the flattened input beside the previous step's one-hot label."""
    flat = x.reshape(x.shape[0], -1).astype(dtype)
    return jnp.concatenate([flat, previous_label.astype(dtype)], axis=-1)


def _sequence_learner(network: nn.Module, initial_state, *, ways: int, instances: int) -> Learner:
    """A :class:`Learner` from a scanned recurrent ``network`` under the label-offset protocol."""

    def dtype_of(params, x):
        return jnp.result_type(x.dtype, *(leaf.dtype for leaf in jax.tree.leaves(params)[:1]))

    def run(params, sequence: Sequence):
        dtype = dtype_of(params, sequence.x)
        inputs = _step_inputs(sequence.x, sequence.previous_label, dtype)
        return network.apply({"params": params}, initial_state(dtype), inputs)

    def check_sequence(support: Split, query_x, query_y=None):
        """Labels in ``0..ways-1``; an episode of ``ways * instances`` steps."""
        check_label_values("support.y", support.y, ways)
        if query_y is not None:
            check_label_values("query.y", query_y, ways)
            check_length(support.x.shape[0] + query_x.shape[0], ways=ways, instances=instances)

    def init(key, episode: Episode):
        sequence = _episode_sequence(episode, jax.random.key(0), ways)
        inputs = _step_inputs(sequence.x, sequence.previous_label, sequence.x.dtype)
        return network.init(key, initial_state(inputs.dtype), inputs)["params"]

    def loss(params, episode: Episode, key=None):
        """Cross-entropy over every step of the shuffled sequence, with per-instance accuracy."""
        sequence = _episode_sequence(episode, key, ways)
        _, logits = run(params, sequence)
        losses = cross_entropy(logits, sequence.y)
        correct = (jnp.argmax(logits, -1) == sequence.y).astype(logits.dtype)
        metrics = {"loss": losses.mean(), "accuracy": correct.mean()}
        for k in range(1, min(instances, MAX_REPORTED_INSTANCE) + 1):
            at_k = (sequence.instance == k).astype(logits.dtype)
            metrics[f"instance_{k}"] = jnp.sum(correct * at_k) / jnp.maximum(jnp.sum(at_k), 1)
        return metrics["loss"], metrics

    def predict(params, support: Split, query_x, key=None):
        """Runs the (shuffled) support sequence, then classifies each query from its final state."""
        sequence = _split_sequence(support, key, ways)
        state, _ = run(params, sequence)
        # Each query is the step after the last support step, so it sees that step's label.
        last = jax.nn.one_hot(sequence.y[-1], ways)
        dtype = dtype_of(params, query_x)
        inputs = _step_inputs(query_x, jnp.broadcast_to(last, (query_x.shape[0], ways)), dtype)

        def one(step_input):
            return network.apply({"params": params}, state, step_input[None])[1][0]

        return jax.vmap(one)(inputs)

    learner = Learner(init=init, loss=loss, predict=predict)
    # Rank 1 is enough: the recurrent learners flatten each step's input.
    return checked(learner, min_rank=1, min_support=1, extra=check_sequence)


def mann(
    *,
    ways: int,
    instances: int,
    memory_slots: int = 128,
    memory_size: int = 40,
    read_heads: int = 4,
    controller: int = 200,
    usage_decay: float = 0.95,
    key_strength: bool = True,
) -> Learner:
    """A MANN with LRUA memory (Santoro et al. 2016) under the label-offset sequence protocol.

    ``loss`` shuffles support and query of an episode into one sequence of
    ``ways * instances`` steps (:func:`metajax.learners.model.sequence.episode_sequence`) and
    returns the mean cross-entropy over all steps, with metrics ``loss``,
    ``accuracy`` and ``instance_1`` .. ``instance_{min(instances, 10)}`` (accuracy at
    the k-th presentation of a class). ``predict`` runs the support set as a sequence
    (shuffled by ``key``; in order if ``key`` is None), then classifies each query
    independently from the final state, giving logits ``[n_query, ways]``. Inputs are
    flattened (Santoro et al. feed 20x20 Omniglot images: load them at that size).

    Args:
      ways: classes per episode; the one-hot label input and the output have this width.
      instances: presentations of each class per episode (``shots + queries``).
      memory_slots: memory rows (128 in the paper); at least ``ways`` and ``read_heads``.
      memory_size: memory width (40 in the paper).
      read_heads: read heads (4 in the paper), also the ``n`` of the least-used rule.
      controller: LSTM units of the controller (200 in the paper).
      usage_decay: ``γ`` of the usage update (0.95; see the module doc).
      key_strength: learn a per-head sharpening of the cosine (a deviation; see the module doc).

    Example:
      >>> import jax
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jax.random.uniform(jax.random.key(0), (6, 8, 5))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=3, shots=1, queries=2)
      >>> learner = mann(ways=3, instances=3, memory_slots=8, memory_size=4, controller=8)
      >>> params = jax.jit(learner.init)(jax.random.key(2), episode)
      >>> loss, metrics = jax.jit(learner.loss)(params, episode, jax.random.key(3))
      >>> sorted(metrics)
      ['accuracy', 'instance_1', 'instance_2', 'instance_3', 'loss']
      >>> predict = jax.jit(learner.predict)
      >>> predict(params, episode.support, episode.query.x, jax.random.key(4)).shape
      (6, 3)
    """
    check_int("ways", ways, 1)
    check_int("instances", instances, 1)
    check_int("read_heads", read_heads, 1)
    check_int("memory_size", memory_size, 1)
    check_int("controller", controller, 1)
    check_int(
        "memory_slots",
        memory_slots,
        max(ways, read_heads),
        why=f" (at least ways={ways} and read_heads={read_heads})",
    )
    real = isinstance(usage_decay, int | float | np.integer | np.floating)
    # Spelled out rather than check_float: tests/test_mann.py pins this wording.
    if not real or isinstance(usage_decay, bool) or not 0.0 <= usage_decay <= 1.0:
        raise ValueError(f"usage_decay must lie in [0, 1], got {usage_decay!r}")
    check_bool("key_strength", key_strength)
    network = MANN(
        ways=ways,
        slots=memory_slots,
        size=memory_size,
        heads=read_heads,
        controller=controller,
        usage_decay=float(usage_decay),
        key_strength=key_strength,
    )

    def initial_state(dtype):
        return initial_memory_state(
            slots=memory_slots,
            size=memory_size,
            heads=read_heads,
            controller=controller,
            dtype=dtype,
        )

    return _sequence_learner(network, initial_state, ways=ways, instances=instances)


def lstm_baseline(*, ways: int, instances: int, hidden: int = 200) -> Learner:
    """The LSTM baseline of Santoro et al. 2016 (Table 1): the same protocol, no external memory.

    A single LSTM layer reads ``[x_t, y_{t-1}]`` and a linear softmax layer on its
    hidden state predicts ``y_t``. ``loss``, its metrics and ``predict`` are as in
    :func:`mann`.

    Args:
      ways: classes per episode.
      instances: presentations of each class per episode (``shots + queries``).
      hidden: LSTM units; 200, the size of the MANN's controller.

    Example:
      >>> import jax
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jax.random.uniform(jax.random.key(0), (6, 8, 5))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=2, shots=1, queries=1)
      >>> learner = lstm_baseline(ways=2, instances=2, hidden=8)
      >>> params = jax.jit(learner.init)(jax.random.key(2), episode)
      >>> jax.jit(learner.loss)(params, episode, jax.random.key(3))[1]["instance_2"].shape
      ()
    """
    check_int("ways", ways, 1)
    check_int("instances", instances, 1)
    check_int("hidden", hidden, 1)
    network = LSTMBaseline(ways=ways, hidden=hidden)

    def initial_state(dtype):
        zeros = jnp.zeros((hidden,), dtype)
        return zeros, zeros

    return _sequence_learner(network, initial_state, ways=ways, instances=instances)
