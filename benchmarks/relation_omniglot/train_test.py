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
from configs import default, paper  # noqa: E402


def test_configs_state_the_paper_schedule():
    config = paper.get_config()
    assert config["steps"] == 1_000_000 and config["decay_every"] == 100_000
    assert config["time_limit"] is None and config["learning_rate"] == 1e-3
    queries = {s: c["queries"] for s, c in default.get_config()["settings"].items()}
    assert queries == {"5w1s": 19, "20w1s": 10}


def test_train_and_evaluate_writes_complete_records():
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root or not (Path(root) / "omniglot" / "images_background.zip").exists():
        pytest.skip("needs $METAJAX_DATA_DIR/omniglot archives")
    config = default.get_config()
    config["settings"]["5w1s"].update(queries=2, test_queries=2, eval_episodes=4)
    config.update(steps=2, log_every=1)
    record = train.train_and_evaluate(config, "5w1s", data_dir=root, progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.996 and record["steps"] == 2
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
