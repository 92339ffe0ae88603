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


def test_configs_compare_like_with_like():
    config = default.get_config()
    assert (config["ways"], config["shots"], config["filters"]) == (20, 1, 64)
    assert (config["generated"], config["neighbours"], config["grid"]) == (7, 15, 3)
    full = paper.get_config()
    assert full["steps"] == 72_000 and full["decay_every"] == 24_000
    assert full["time_limit"] is None and full["learning_rate"] == 1e-3


def test_train_and_evaluate_writes_complete_records():
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root or not (Path(root) / "omniglot" / "images_background.zip").exists():
        pytest.skip("needs $METAJAX_DATA_DIR/omniglot archives")
    config = default.get_config()
    config.update(
        ways=5, queries=2, test_queries=2, eval_episodes=4, eval_batch=2, steps=2, log_every=1,
        filters=8, generated=2, neighbours=2, candidates=8, gallery_classes=16,
        deformation_filters=4,
    )  # fmt: skip
    train_pool, test_pool, gallery = train.load_data(config, root)
    assert gallery.shape == (16, 28, 28, 1)
    records, accuracies = [], []
    for method in train.METHODS:
        steps = records[0]["steps"] if records else None
        record, acc = train.train_and_evaluate(
            config, method, gallery, train_pool, test_pool, steps=steps, progress=False
        )
        records.append(record)
        accuracies.append(acc)
        assert record["setting"] == "5w1s" and record["paper"] is None
        assert record["steps"] == 2 and 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
        assert acc.shape == (4,)
    gain = train.gain_record(config, records[0], *accuracies)
    assert gain["value"] == pytest.approx(records[0]["value"] - records[1]["value"])
