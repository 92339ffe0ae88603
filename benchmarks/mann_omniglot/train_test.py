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
    assert config["steps"] == {"MANN": 100_000, "LSTM": 100_000} and config["tasks"] == 16
    assert config["optimizer"] == "rmsprop" and config["learning_rate"] == 1e-4
    assert config["time_limit"] is None and config["image_size"] == 20
    assert config["mann"] == dict(
        memory_slots=128, memory_size=40, read_heads=4, controller=200, key_strength=True
    )
    cpu = default.get_config()
    assert (cpu["ways"], cpu["instances"]) == (5, 10) and cpu["lstm"] == dict(hidden=200)


@pytest.mark.parametrize("method", ["MANN", "LSTM"])
def test_train_and_evaluate_writes_complete_records(method):
    root = os.environ.get("METAJAX_DATA_DIR")
    if not root or not (Path(root) / "omniglot" / "images_background.zip").exists():
        pytest.skip("needs $METAJAX_DATA_DIR/omniglot archives")
    config = default.get_config()
    config.update(steps={method: 2}, log_every=1, tasks=2, eval_episodes=4)
    config["mann"].update(memory_slots=16, memory_size=8, controller=16)
    config["lstm"].update(hidden=16)
    records = train.train_and_evaluate(config, method, data_dir=root, progress=False)
    assert [r["setting"] for r in records] == [f"5-way instance {k}" for k in (1, 2, 3, 4, 5, 10)]
    assert [r["paper"] for r in records] == [train.PAPER[method][k] for k in (1, 2, 3, 4, 5, 10)]
    for r in records:
        assert r["steps"] == 2 and r["method"] == method and r["metric"] == "accuracy"
        assert 0.0 <= r["value"] <= 1.0 and r["ci95"] >= 0.0
