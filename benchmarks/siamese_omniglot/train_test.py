"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data
(Lake's protocol: alphabets of 20 characters to draw the one-shot runs from)."""

import pytest
from harness.testing import LAKE_ALPHABETS, import_own, use_fake_data

train, default, paper = import_own(__file__, "train", "configs.default", "configs.paper")


@pytest.mark.parametrize("config_module", [default, paper], ids=["default", "paper"])
def test_run_writes_complete_records(config_module, monkeypatch):
    use_fake_data(monkeypatch, train)
    config = config_module.get_config()
    config.update(train_ways=5, queries=1, pairs=8, steps=2, eval_episodes=4, log_every=1)
    ((record,),) = train.run(config, progress=False)
    assert record["setting"] == "20w1s-within-alphabet" and record["paper"] == 0.92
    assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
    assert record["transductive"] is True  # Conv-4's batch norm over the query set
    assert record["steps"] == 2 and record["test_trials"] == 80
    assert record["test_alphabets"] == LAKE_ALPHABETS["test"][0]
