"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data."""

from harness.testing import import_own, use_fake_data

train, default = import_own(__file__, "train", "configs.default")


def test_run_writes_complete_records(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(train_ways=5, steps={1: 2}, eval_episodes=4, test_ways=(5,), log_every=1)
    ((record,),) = train.run(config, shots=[1], progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.988
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
    assert record["transductive"] is True  # Conv-4's batch norm over the query set
