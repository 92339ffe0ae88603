import sys
from pathlib import Path

import jax
import pytest

# The smoke tests import the shared harness (benchmarks/harness/) from this folder, as
# every main.py does.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Benchmark folders are scripts, not packages: only their *_test.py files are tests.
collect_ignore_glob = ["*/configs/*", "*/main.py", "*/train.py"]


@pytest.fixture
def compile_quickly(monkeypatch):
    """XLA without most of its optimisation passes, for one test that asks for it.

    A smoke test runs a few steps of programs it compiles once, so compiling is most of
    its time; ``jax_disable_most_optimizations`` (LLVM at -O0, no expensive passes) about
    halves that on CPU, and leaves what runs and XLA's buffer assignment (the peak bytes
    imaml_memory reads) as they were. It is read at each compilation, so it is set for
    the test only (the library's tests in the same worker compile as usual), and in the
    environment of the processes a test starts (the scaling benchmark's children).

    Not for every test: at these settings maml_omniglot's iMAML meta-step (im2col Conv-4,
    damped CG) gives a NaN objective at its first step, where the optimised program does
    not; the tests that use it compile (imaml_memory) or time (scaling) their programs.
    """
    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", before)
