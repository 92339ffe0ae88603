"""Backbones as pure ``init``/``apply`` pairs over Flax modules.

Learners see a backbone only as a :class:`Model`: ``init(key, x) -> params`` and
``apply(params, x) -> outputs``. Parameters are a plain pytree, so gradient-based
learners can adapt them per task and vmap over tasks.

Batch norm here always normalises with the statistics of the batch it is given and
keeps no running averages. That is how MAML (Finn et al. 2017, §5.2 and their code)
uses it, and it keeps every learner a pure function of its parameters. It makes
evaluation transductive over the episode passed in, as in MAML and most public
few-shot code; learners that embed support and query together share the statistics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from metajax.core.tracing import in_per_task_weights
from metajax.core.validation import (
    check_array,
    check_choice,
    check_floating,
    check_int,
    check_int_sequence,
    check_optional_int,
)

Array = jax.Array
Params = Any


class Model(NamedTuple):
    """A backbone as two pure functions.

    Attributes:
      init: ``(key, x) -> params`` for an example batch ``x``.
      apply: ``(params, x) -> outputs`` for a batch ``x``.
      head: the width of its output head; ``0`` for a backbone that ends at its
        features (``conv4()``, ``mlp()``); ``None`` when the model does not say. The
        learners that train raw outputs as logits check it at ``init``.
    """

    init: Callable[[Array, Array], Params]
    apply: Callable[[Params, Array], Array]
    head: int | None = None


class BatchStatNorm(nn.Module):
    """Batch norm on the current batch's statistics, with a learned scale and offset.

    ``axes`` are reduced for the statistics (all but the last by default). ``weight``
    (broadcastable to ``x``, 1 where an element counts and 0 where not) leaves padding
    or empty pairs out of the statistics, so that they cannot shift them.
    """

    epsilon: float = 1e-5
    axes: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, x, weight=None):
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        axes = tuple(range(x.ndim - 1)) if self.axes is None else self.axes
        if weight is None:
            mean = jnp.mean(x, axis=axes, keepdims=True)
            var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
        else:
            weight = jnp.broadcast_to(jnp.asarray(weight, x.dtype), x.shape)
            count = jnp.maximum(jnp.sum(weight, axis=axes, keepdims=True), 1.0)
            mean = jnp.sum(weight * x, axis=axes, keepdims=True) / count
            var = jnp.sum(weight * jnp.square(x - mean), axis=axes, keepdims=True) / count
        return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


def im2col_conv(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
    **_,
):
    """``lax.conv_general_dilated`` for NHWC/HWIO, stride 1, as shifted copies and one matmul.

    Under ``vmap`` with a kernel per task (MAML and its kin), XLA lowers an ordinary
    convolution to a grouped convolution, which is several times slower on XLA:CPU
    than the batched matmul this becomes (benchmarks/maml_speed/README.md).
    """
    if (
        tuple(window_strides) != (1, 1)
        or feature_group_count != 1
        or any(d not in (None, 1, (1, 1)) for d in (lhs_dilation, rhs_dilation))
    ):
        raise ValueError("im2col_conv supports stride 1, no dilation and no feature groups")
    kh, kw, cin, cout = rhs.shape
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"padding must be SAME, VALID or pairs, got {padding!r}")
        same = padding == "SAME"
        padding = [((k - 1) // 2, k // 2) if same else (0, 0) for k in (kh, kw)]
    padding = tuple(tuple(int(p) for p in pair) for pair in padding)
    if kh * kw * cin < cout:
        return _im2col_few_inputs(lhs, rhs, padding, precision)
    return _im2col(lhs, rhs, padding, precision)


def _shifted(x, kh, kw, padding):
    """The ``kh * kw`` shifted windows of ``x`` (NHWC) that a stride-1 convolution reads."""
    x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return [x[:, i : i + h, j : j + w] for i in range(kh) for j in range(kw)]


def _im2col(x, kernel, padding, precision):
    kh, kw, cin, cout = kernel.shape
    patches = jnp.concatenate(_shifted(x, kh, kw, padding), axis=-1)
    return jnp.matmul(patches, kernel.reshape(kh * kw * cin, cout), precision=precision)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _im2col_few_inputs(x, kernel, padding, precision):
    return _im2col(x, kernel, padding, precision)


@functools.partial(_im2col_few_inputs.defjvp, symbolic_zeros=True)
def _im2col_few_inputs_jvp(padding, precision, primals, tangents):
    # The kernel's gradient contracts the patches with the output's cotangent over every
    # pixel. XLA:CPU's matmul wants that contraction along both operands' minor axes, and
    # with the patches pixel-major it transposes the cotangent, which has cout columns
    # where the patches have only kh * kw * cin: Conv-4's first layer (9 against 64)
    # spent a fifth of a CPU MAML meta-step on that copy. Laying the patches out
    # pixel-minor for the kernel's term lets the matmul read both as they are.
    x, kernel = primals
    x_dot, kernel_dot = tangents
    y = _im2col(x, kernel, padding, precision)
    terms = []
    if not isinstance(x_dot, SymbolicZero):
        # Through this function again, so that a second derivative's kernel term (MAML)
        # takes the same layout.
        terms.append(_im2col_few_inputs(x_dot, kernel, padding, precision))
    if not isinstance(kernel_dot, SymbolicZero):
        kh, kw, cin, cout = kernel.shape
        columns = jnp.stack(_shifted(x, kh, kw, padding))  # [kh * kw, n, h, w, cin]
        n, h, w = columns.shape[1:4]
        columns = jnp.moveaxis(columns, -1, 1).reshape(kh * kw * cin, n * h * w)
        term = jax.lax.dot_general(
            columns,
            kernel_dot.reshape(kh * kw * cin, cout),
            (((0,), (0,)), ((), ())),
            precision=precision,
        )
        terms.append(term.reshape(n, h, w, cout))
    y_dot = functools.reduce(jnp.add, terms) if terms else jnp.zeros_like(y)
    return y, y_dot


def auto_conv(*args, **kwargs):
    """``lax.conv_general_dilated``, or :func:`im2col_conv` for per-task weights on the CPU.

    On the CPU, one second-order MAML meta-step of Conv-4 (5-way 1-shot, 32 tasks)
    takes 3.4 s with im2col and 82 s with XLA's convolution; a ProtoNet step on shared
    weights takes 0.42 s with XLA's and 0.62 s with im2col; compiled with
    :func:`metajax.compiler_options`, XLA's is faster still (0.89 -> 0.40 s per 60-way
    step on a slower machine) (``benchmarks/maml_speed/README.md``,
    ``benchmarks/torch_speed/README.md``).
    """
    per_task = in_per_task_weights() and jax.default_backend() == "cpu"
    conv = im2col_conv if per_task else jax.lax.conv_general_dilated
    return conv(*args, **kwargs)


CONVOLUTIONS = {"auto": auto_conv, "xla": jax.lax.conv_general_dilated, "im2col": im2col_conv}


def max_pool_2x2(x: Array) -> Array:
    """2x2 max-pool with stride 2, flooring odd sizes as PyTorch's ``MaxPool2d`` does.

    Written as a reshape and a max: on XLA:CPU its backward pass is markedly faster
    than ``reduce_window``'s (``../shared/notes/cpu-baseline.md``), and a ProtoNet
    step about 1.3x faster than with the maximum of four strided slices. But XLA:CPU
    (jax 0.10.2) miscompiles its gradient when it is taken per example under
    ``jit(vmap(grad))`` with shared weights before it (a convolution and batch norm):
    the per-task kernel gradients come out wrong, by as much as their own size, at
    small shapes (8x8 images, 4 filters) while eager execution is right. So inside
    :func:`~metajax.core.tracing.per_task_weights`, where gradient-based learners take exactly such
    gradients, it is the maximum of four strided slices, which is right at every
    shape tested (``tests/test_models.py``). Wrap your own per-example gradients of
    a Conv-4 in ``per_task_weights()`` for the same reason.
    """
    x = x[:, : x.shape[1] // 2 * 2, : x.shape[2] // 2 * 2]
    if in_per_task_weights():
        rows = jnp.maximum(x[:, 0::2], x[:, 1::2])
        return jnp.maximum(rows[:, :, 0::2], rows[:, :, 1::2])
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Conv4(nn.Module):
    """The Conv-4 of Vinyals et al. 2016, Snell et al. 2017 and Finn et al. 2017.

    Four blocks of 3x3 convolution (``filters`` channels, same padding), batch norm,
    ReLU and 2x2 max-pool; the output is flattened (64 features for 28x28 inputs).
    The convolutions have no bias: batch norm's offset makes it redundant.
    """

    filters: int = 64
    blocks: int = 4
    outputs: int | None = None
    convolution: str = "auto"

    @nn.compact
    def __call__(self, x):
        conv = CONVOLUTIONS[self.convolution]
        for _ in range(self.blocks):
            x = nn.Conv(
                self.filters, (3, 3), padding="SAME", use_bias=False, conv_general_dilated=conv
            )(x)
            x = BatchStatNorm()(x)
            x = nn.relu(x)
            x = max_pool_2x2(x)
        x = x.reshape(x.shape[0], -1)
        if self.outputs is not None:
            x = nn.Dense(self.outputs)(x)
        return x


class MLP(nn.Module):
    """A ReLU multi-layer perceptron over flattened features."""

    hidden: Sequence[int] = (40, 40)
    outputs: int | None = None

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        if self.outputs is not None:
            x = nn.Dense(self.outputs)(x)
        return x


def conv4(
    *, filters: int = 64, blocks: int = 4, outputs: int | None = None, convolution: str = "auto"
) -> Model:
    """Conv-4 over images ``[n, height, width, channels]``.

    Args:
      filters: channels of every convolution (64 in the papers).
      blocks: number of conv blocks; each halves the spatial size.
      outputs: width of a final linear layer (the N-way head of MAML-style
        learners), or ``None`` for the flattened embedding (metric learners).
      convolution: ``"xla"`` (``lax.conv_general_dilated``), ``"im2col"`` (shifted
        copies and a matmul) or ``"auto"``: ``"im2col"`` on the CPU where a
        gradient-based learner adapts the weights per task (see
        :func:`~metajax.core.tracing.per_task_weights`), ``"xla"`` everywhere else.
        Same parameters, same outputs; on the CPU, ``"im2col"`` is many times faster
        for per-task weights (MAML-style learners) and ``"xla"`` 1.5x or more faster for
        shared ones (metric learners).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = conv4()
      >>> x = jnp.zeros((5, 28, 28, 1))
      >>> params = model.init(jax.random.key(0), x)
      >>> model.apply(params, x).shape
      (5, 64)
    """
    check_int("filters", filters, 1)
    check_int("blocks", blocks, 1)
    check_optional_int("outputs", outputs, 1)
    check_choice("convolution", convolution, tuple(CONVOLUTIONS))
    module = Conv4(filters=filters, blocks=blocks, outputs=outputs, convolution=convolution)
    # One program per input shape: run eagerly, Flax's init would compile one small XLA
    # program per operation and parameter shape (the shape inference runs the forward
    # pass), which costs more than the whole init as one program.
    module_init = jax.jit(module.init)
    min_side = 2**blocks

    def check(x, channels=None):
        check_array("x", x, rank=4, layout="images [n, height, width, channels]")
        check_floating("x", x)
        if min(x.shape[1:3]) < min_side:
            raise ValueError(
                f"x images must be at least {min_side}x{min_side} for {blocks} pooling blocks, "
                f"got {x.shape[1]}x{x.shape[2]}"
            )
        if channels is not None and x.shape[3] != channels:
            raise ValueError(f"x must have {channels} channels as at init, got {x.shape[3]}")

    def init(key, x):
        check(x)
        return module_init(key, x)["params"]

    def apply(params, x):
        check(x, params["Conv_0"]["kernel"].shape[2])
        return module.apply({"params": params}, x)

    return Model(init=init, apply=apply, head=outputs or 0)


def mlp(*, hidden: Sequence[int] = (40, 40), outputs: int | None = None) -> Model:
    """A ReLU MLP; ``hidden=(40, 40)`` is the sinusoid network of Finn et al. 2017, §5.1.

    Args:
      hidden: widths of the hidden layers.
      outputs: width of a final linear layer, or ``None`` to end at the last hidden layer.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = mlp(hidden=(40, 40), outputs=1)
      >>> params = model.init(jax.random.key(0), jnp.zeros((10, 1)))
      >>> model.apply(params, jnp.ones((10, 1))).shape
      (10, 1)
    """
    hidden = check_int_sequence("hidden", hidden, 1, allow_empty=True)
    check_optional_int("outputs", outputs, 1)
    if not hidden and outputs is None:
        raise ValueError("mlp needs at least one layer: give hidden widths or outputs")
    module = MLP(hidden=hidden, outputs=outputs)
    module_init = jax.jit(module.init)  # see conv4

    def check(x, features=None):
        check_array("x", x, min_rank=2, layout="[n, *features]")
        check_floating("x", x)
        if features is not None and x[0].size != features:
            raise ValueError(
                f"x must have {features} features per example as at init, got {x.shape[1:]}"
            )

    def init(key, x):
        check(x)
        return module_init(key, x)["params"]

    def apply(params, x):
        check(x, params["Dense_0"]["kernel"].shape[0])
        return module.apply({"params": params}, x)

    return Model(init=init, apply=apply, head=outputs or 0)
