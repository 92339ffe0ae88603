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


def test_configs_state_the_schedules():
    config = paper.get_config()
    assert config["time_limit"] is None and config["learning_rate"] == 1e-3
    assert all(s["steps"] == 40_000 and s["tasks"] == 32 for s in config["settings"].values())
    cpu = default.get_config()
    assert set(cpu["settings"]) == {"5w1s", "20w1s"} and cpu["time_limit"] > 0
    assert {s: (c["ways"], c["shots"]) for s, c in cpu["settings"].items()} == {
        "5w1s": (5, 1),
        "20w1s": (20, 1),
    }


def test_train_and_evaluate_writes_complete_records():
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root or not (Path(root) / "omniglot" / "images_background.zip").exists():
        pytest.skip("needs $METAJAX_DATA_DIR/omniglot archives")
    config = default.get_config()
    config["settings"]["5w1s"].update(queries=1, tasks=2, steps=2, test_queries=1, eval_episodes=4)
    config.update(log_every=1, eval_batch=2)
    record = train.train_and_evaluate(config, "5w1s", data_dir=root, progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.9907 and record["steps"] == 2
    assert record["method"] == "SNAIL" and record["benchmark"] == "snail_omniglot"
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
