"""Smoke test of the benchmark: a few meta-steps end to end."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Every benchmark has its own `train` and `configs`: forget another folder's.
for name in [m for m in sys.modules if m == "train" or m.split(".")[0] == "configs"]:
    del sys.modules[name]

import train  # noqa: E402
from configs import default  # noqa: E402


def test_train_and_evaluate_writes_complete_records():
    config = default.get_config()
    config.update(steps=3, eval_episodes=4, log_every=1, test_steps=(0, 1))
    records = train.train_and_evaluate(config, 5, progress=False)
    assert [(r["method"], r["setting"]) for r in records] == [
        ("MAML", "K=5, 0 steps"),
        ("MAML", "K=5, 1 step"),
        ("pretrained", "K=5, 0 steps"),
        ("pretrained", "K=5, 1 step"),
    ]
    assert all(r["metric"] == "mse" and r["value"] > 0 for r in records)
