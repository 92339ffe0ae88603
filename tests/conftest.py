"""Shared fixtures: the real data directory (skipped with a reason when absent) and caches.

The test run also gets one JAX persistent compilation cache of its own, so that a program
compiled once is not compiled again by another test, by the other xdist worker, or by a
process a test starts (the CLI runs, the forced-device runs, the notebooks' kernels).
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
from pathlib import Path

# JAX reads these when it is imported and decides on its first compile whether to use a
# cache, so they are set before anything imports JAX. The xdist workers and every
# subprocess inherit them; a cache folder given by the caller is used as it is.
_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="metajax-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
    # Programs that compile faster than this cost more to write and read than to compile.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")  # any size
# XLA compiles at its default optimisation level, although lowering it would save compile
# time (most of this suite's time): at -O0 (jax_disable_most_optimizations) XLA:CPU gives
# NaN gradients through batch norm and an odd-sized 2x2 max-pool (test_models.py), and at
# -O1 or -O2 the maml_omniglot smoke test's iMAML meta-step has a NaN gradient at its first
# step; --xla_llvm_disable_expensive_passes alone is safe but saved nothing measurable.
# What does save, for this run only (its subprocesses inherit it), is XLA:CPU's older
# elemental emitters instead of its MLIR fusion emitters, and LLVM's loop unroller off:
# unrolled, each of jax.random's threefry kernels (one per parameter of every Flax init,
# one per sampler draw) grows from 7 KB of IR to up to 900 KB. Together they cut a Conv-4
# MAML meta-step's compile time by a third and a Conv-4 init's by half; results move by
# float32 rounding only (reductions summed in another order; inits are bit-identical).
_FAST_COMPILE = (
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_backend_extra_options=-unroll-threshold=0",
)
_flags = os.environ.get("XLA_FLAGS", "").split()
os.environ["XLA_FLAGS"] = " ".join([*_flags, *(f for f in _FAST_COMPILE if f not in _flags)])
# The notebooks run as tests (nbmake) on their "ci" budget: every cell, seconds of training.
os.environ.setdefault("METAJAX_NOTEBOOK_BUDGET", "ci")
# The run's decoded-dataset cache, also one for all workers (the loaders write atomically).
_OWN_DATA_CACHE = None
if "_METAJAX_TEST_DATA_CACHE" not in os.environ:
    _OWN_DATA_CACHE = tempfile.mkdtemp(prefix="metajax-data-cache-")
    os.environ["_METAJAX_TEST_DATA_CACHE"] = _OWN_DATA_CACHE
# The notebooks and the CLI's subprocesses load through the library's default cache folder:
# pointed at the same one, they neither decode Omniglot again nor write into ~/.cache.
os.environ.setdefault("METAJAX_CACHE_DIR", os.environ["_METAJAX_TEST_DATA_CACHE"])

import jax  # noqa: E402
import pytest  # noqa: E402

# In case a plugin imported JAX before this file (it then read the variables too early).
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
for _name in ("persistent_cache_min_compile_time_secs", "persistent_cache_min_entry_size_bytes"):
    if f"JAX_{_name.upper()}" in os.environ:
        _kind = type(getattr(jax.config, f"jax_{_name}"))
        jax.config.update(f"jax_{_name}", _kind(os.environ[f"JAX_{_name.upper()}"]))

from metajax.datasets import load_omniglot  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Files whose few tests each run long come first: the notebooks, then the benchmarks'
    smoke tests, then the rest, most tests first (as xdist would order them).

    xdist hands whole files to its workers in this order (``--dist loadfile
    --no-loadscope-reorder``); a long file left for the end would keep one worker busy
    while the other idles.
    """
    tests_in = collections.Counter(item.path for item in items)

    def order(item):
        kind = (
            0 if item.path.suffix == ".ipynb" else 1 if item.path.name.endswith("_test.py") else 2
        )
        return kind, -tests_in[item.path], str(item.path)

    items.sort(key=order)  # stable: each file's tests keep their order


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        for folder in (_OWN_CACHE, _OWN_DATA_CACHE):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root:
        pytest.skip("METAJAX_DATA_DIR is not set; point it at a folder holding omniglot/")
    path = Path(root)
    archives = [path / "omniglot" / f"images_{s}.zip" for s in ("background", "evaluation")]
    missing = [str(a) for a in archives if not a.exists()]
    if missing:
        pytest.skip(f"Omniglot archives missing: {', '.join(missing)}")
    return path


@pytest.fixture(scope="session")
def omniglot_cache() -> Path:
    """A cache folder of this test run's own, so tests never depend on ~/.cache.

    The xdist workers share it: Omniglot is decoded once per run, not once per worker.
    """
    return Path(os.environ["_METAJAX_TEST_DATA_CACHE"])


@pytest.fixture(scope="session")
def omniglot_vinyals(data_dir, omniglot_cache):
    return load_omniglot(data_dir, protocol="vinyals", cache_dir=omniglot_cache, download=False)


@pytest.fixture(scope="session")
def omniglot_lake(data_dir, omniglot_cache):
    return load_omniglot(data_dir, protocol="lake", cache_dir=omniglot_cache, download=False)


@pytest.fixture(scope="session")
def omniglot_vinyals_14(data_dir, omniglot_cache):
    """Vinyals' split at 14x14: a quarter of the pixels, for the learning tests."""
    return load_omniglot(
        data_dir, protocol="vinyals", image_size=14, cache_dir=omniglot_cache, download=False
    )


@pytest.fixture
def f64():
    """Casts a pytree to float64, for numerical checks (the models initialise in float32)."""
    import jax
    import jax.numpy as jnp

    return lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)
