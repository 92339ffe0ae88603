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


def test_configs_state_the_paper_setup():
    config = paper.get_config()
    assert config["model"]["filters"] == 64 and config["model"]["representation_steps"] == 5
    assert config["learning_rate"] == 1e-3 and config["clip_norm"] == 10.0
    assert config["time_limit"] is None
    assert {s: c["queries"] for s, c in config["settings"].items()} == {"5w1s": 10, "20w1s": 10}
    assert default.get_config()["model"]["filters"] == 32


def test_train_and_evaluate_writes_complete_records():
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root or not (Path(root) / "omniglot" / "images_background.zip").exists():
        pytest.skip("needs $METAJAX_DATA_DIR/omniglot archives")
    config = default.get_config()
    config["model"].update(filters=4, blocks=2, hidden=(8,))
    config["settings"]["5w1s"].update(
        queries=1, test_queries=1, eval_episodes=4, eval_batch=2, steps=2
    )
    config.update(log_every=1)
    record = train.train_and_evaluate(config, "5w1s", data_dir=root, progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.9895 and record["steps"] == 2
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
