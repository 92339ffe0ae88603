"""Smoke test of the benchmark: a few steps end to end, on the real data when it is there."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Every benchmark has its own `train` and `configs`: forget another folder's.
for name in [m for m in sys.modules if m == "train" or m.split(".")[0] == "configs"]:
    del sys.modules[name]

import train  # noqa: E402
from configs import default  # noqa: E402


def test_train_and_evaluate_writes_complete_records():
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root or not (Path(root) / "omniglot" / "images_background.zip").exists():
        pytest.skip("needs $METAJAX_DATA_DIR/omniglot archives")
    config = default.get_config()
    config.update(steps=2, tasks={(5, 1): 1}, eval_episodes=4, log_every=1, test_queries=2)
    record = train.train_and_evaluate(config, 5, 1, data_dir=root, progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.981
    assert record["steps"] == 2 and record["method"] == "MatchingNet-scale10"
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
