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


@pytest.mark.parametrize("config_module", [default, paper], ids=["default", "paper"])
def test_train_and_evaluate_writes_complete_records(config_module):
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root or not (Path(root) / "omniglot" / "images_background.zip").exists():
        pytest.skip("needs $METAJAX_DATA_DIR/omniglot archives")
    config = config_module.get_config()
    config.update(train_ways=5, queries=1, pairs=8, steps=2, eval_episodes=4, log_every=1)
    (record,) = train.train_and_evaluate(config, data_dir=root, progress=False)
    assert record["setting"] == "20w1s-within-alphabet" and record["paper"] == 0.92
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
    assert record["steps"] == 2 and record["test_trials"] == 80 and record["test_alphabets"] == 20
