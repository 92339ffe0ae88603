"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data."""

from harness.testing import import_own, use_fake_data

train, default, paper = import_own(__file__, "train", "configs.default", "configs.paper")


def test_configs_state_the_paper_schedule():
    config = paper.get_config()
    for spec in config["settings"].values():
        assert spec["steps"] == 1_000_000 and spec["decay_every"] == 100_000
    assert config["time_limit"] is None and config["learning_rate"] == 1e-3
    queries = {s: c["queries"] for s, c in default.get_config()["settings"].items()}
    assert queries == {"5w1s": 19, "20w1s": 10}


def test_run_writes_complete_records(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config["settings"]["5w1s"].update(
        queries=2, test_queries=2, eval_episodes=4, steps=2, decay_every=1
    )
    config.update(log_every=1, tag="smoke")
    ((record,),) = train.run(config, settings=["5w1s"], progress=False)
    assert record["setting"] == "5w1s, smoke" and record["paper"] == 0.996
    assert record["steps"] == record["scheduled_steps"] == 2 and record["decay_every"] == 1
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
    assert record["transductive"] is True  # Conv-4's batch norm over the query set
