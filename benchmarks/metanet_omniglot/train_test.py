"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data."""

from harness.testing import import_own, use_fake_data

train, default, paper = import_own(__file__, "train", "configs.default", "configs.paper")


def test_configs_state_the_paper_setup():
    config = paper.get_config()
    assert config["model"]["filters"] == 64 and config["model"]["representation_steps"] == 5
    assert config["learning_rate"] == 1e-3 and config["clip_norm"] == 10.0
    assert config["time_limit"] is None
    assert {s: c["queries"] for s, c in config["settings"].items()} == {"5w1s": 10, "20w1s": 10}
    assert default.get_config()["model"]["filters"] == 32


def test_run_writes_complete_records(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config["model"].update(filters=4, blocks=2, hidden=(8,))
    config["settings"]["5w1s"].update(
        queries=1, test_queries=1, eval_episodes=4, eval_batch=2, steps=2
    )
    config.update(log_every=1)
    ((record,),) = train.run(config, settings=["5w1s"], progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.9895 and record["steps"] == 2
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
    assert record["transductive"] is False  # no batch norm in Munkhdalai & Yu's networks
