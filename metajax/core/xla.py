"""XLA compiler options that metajax's jitted steps compile with.

On the CPU, XLA (jaxlib 0.10.2) hands convolutions to YNNPACK, which computes the kernel
gradient of Conv-4's 64-channel layers at about 12 GFLOP/s (a ProtoNet 60-way training
step spent more than half its time in one such convolution); XLA's Eigen convolution
does the same in a fraction of the time. Matmuls and reductions stay with YNNPACK,
which is faster there. Measured in ``benchmarks/torch_speed`` and ``benchmarks/maml_speed``:
ProtoNet 60-way 1-shot 0.89 -> 0.42 s per step, 5-shot 1.55 -> 0.59 s; MAML and the
LSTM baseline unchanged.

XLA:CPU's newer (MLIR) fusion emitters take about 0.5 GB to compile a second-order MAML
meta-step of Conv-4 that its older emitters compile in a tenth of that, and the
programs they make run no faster here: with them off, the MAML meta-step's peak memory
went from 1.02 to 0.59 GB (1 inner step) and 1.26 to 0.66 GB (5 steps), its compile
time from 9.6 to 7.5 s.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_CPU_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": (
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
    ),
    "xla_cpu_use_fusion_emitters": False,
}


@functools.cache
def _cpu_options_accepted() -> bool:
    # The options are XLA's, not JAX's: a jaxlib that renames or drops one refuses to
    # compile with them, and then metajax compiles with XLA's defaults.
    try:
        jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(jnp.float32(0)).compile()
    except Exception:  # noqa: BLE001 - any refusal means the same: leave XLA's defaults
        return False
    return True


def compiler_options(backend: str | None = None) -> dict[str, str | bool]:
    """The options metajax's training and evaluation steps pass to ``jax.jit``.

    Empty except on the CPU, where it keeps XLA from handing convolutions to YNNPACK
    and compiles with XLA's older fusion emitters (see the module's docstring); empty
    there too when this jaxlib does not know the options. Pass it to your own
    ``jax.jit`` of a convolutional network's gradient.

    Args:
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; ``None`` for JAX's default backend.

    Example:
      >>> import jax
      >>> from metajax import compiler_options
      >>> step = jax.jit(lambda x: x * 2, compiler_options=compiler_options())
      >>> int(step(3))
      6
    """
    if backend is not None and not (isinstance(backend, str) and backend):
        raise ValueError(
            f"backend must be a platform name ('cpu', 'gpu', 'tpu') or None, got {backend!r}"
        )
    backend = jax.default_backend() if backend is None else backend
    if backend != "cpu" or not _cpu_options_accepted():
        return {}
    return dict(_CPU_OPTIONS)
