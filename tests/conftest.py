"""Shared fixtures: the real data directory (skipped with a reason when absent) and caches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from metajax.datasets import load_omniglot


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
def omniglot_cache(tmp_path_factory) -> Path:
    """A cache folder of this test session's own, so tests never depend on ~/.cache."""
    return tmp_path_factory.mktemp("metajax-cache")


@pytest.fixture(scope="session")
def omniglot_vinyals(data_dir, omniglot_cache):
    return load_omniglot(data_dir, protocol="vinyals", cache_dir=omniglot_cache, download=False)


@pytest.fixture(scope="session")
def omniglot_lake(data_dir, omniglot_cache):
    return load_omniglot(data_dir, protocol="lake", cache_dir=omniglot_cache, download=False)


@pytest.fixture
def f64():
    """Casts a pytree to float64, for numerical checks (the models initialise in float32)."""
    import jax
    import jax.numpy as jnp

    return lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)
