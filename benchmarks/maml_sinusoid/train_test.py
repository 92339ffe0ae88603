"""Smoke test of the benchmark: a few meta-steps end to end."""

from harness.testing import import_own

train, default = import_own(__file__, "train", "configs.default")


def test_run_writes_complete_records():
    config = default.get_config()
    config.update(shots=(5,), steps=3, eval_episodes=4, log_every=1, test_steps=(0, 1))
    (records,) = train.run(config, progress=False)
    assert [(r["method"], r["setting"]) for r in records] == [
        ("MAML", "K=5, 0 steps"),
        ("MAML", "K=5, 1 step"),
        ("pretrained", "K=5, 0 steps"),
        ("pretrained", "K=5, 1 step"),
    ]
    assert all(r["metric"] == "mse" and r["value"] > 0 for r in records)
