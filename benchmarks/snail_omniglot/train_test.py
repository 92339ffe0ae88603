"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data."""

from harness.testing import import_own, use_fake_data

train, default, paper = import_own(__file__, "train", "configs.default", "configs.paper")


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


def test_run_writes_complete_records(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config["settings"]["5w1s"].update(queries=1, tasks=2, steps=2, test_queries=1, eval_episodes=4)
    config.update(log_every=1, eval_batch=2)
    ((record,),) = train.run(config, settings=["5w1s"], progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.9907 and record["steps"] == 2
    assert record["method"] == "SNAIL" and record["benchmark"] == "snail_omniglot"
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
    assert record["transductive"] is True  # Conv-4's batch norm over the query set
