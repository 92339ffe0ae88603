"""Smoke test: iMAML's step memory does not grow with inner steps; MAML's does."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Every benchmark has its own `train` and `configs`: forget another folder's.
for name in [m for m in sys.modules if m == "train" or m.split(".")[0] == "configs"]:
    del sys.modules[name]

import train  # noqa: E402
from configs import default  # noqa: E402


def test_memory_growth_on_a_small_meta_batch():
    config = default.get_config()
    config.update(tasks=2, queries=2, filters=8)
    maml = [train.measure("MAML", s, config)["peak_bytes"] for s in (1, 4)]
    imaml = [train.measure("iMAML", s, config)["peak_bytes"] for s in (1, 4)]
    assert maml[1] > 1.3 * maml[0]
    assert imaml[1] <= 1.2 * imaml[0]
