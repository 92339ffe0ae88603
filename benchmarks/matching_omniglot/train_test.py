"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data."""

from harness.testing import import_own, use_fake_data

train, default = import_own(__file__, "train", "configs.default")


def test_run_writes_complete_records(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(steps=2, tasks={(5, 1): 1}, eval_episodes=4, log_every=1, test_queries=2)
    config.update(tag="smoke")
    ((record,),) = train.run(config, settings=["5w1s"], progress=False)
    assert record["setting"] == "5w1s, smoke" and record["paper"] == 0.981
    assert record["steps"] == 2 and record["method"] == "MatchingNet-scale10"
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
    assert record["transductive"] is True  # Conv-4's batch norm over the query set
    assert record["decay_every"] == 2000


def test_ablation_is_short_tagged_and_keeps_a_constant_rate():
    # Its records go beside the budget row, not over it: the tag joins the setting
    # (the run above checks how).
    (ablation,) = import_own(__file__, "configs.ablation")
    config = ablation.get_config()
    assert config["settings"] == ((5, 1),) and config["steps"] == 300
    assert config["decay_every"] is None and config["time_limit"] is None
    assert config["tag"] == "ablation, 300 steps"
