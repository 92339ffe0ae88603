"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data."""

import pytest
from harness.testing import import_own, use_fake_data

train, default, paper = import_own(__file__, "train", "configs.default", "configs.paper")


def test_configs_compare_like_with_like():
    config = default.get_config()
    assert (config["ways"], config["shots"], config["filters"]) == (20, 1, 64)
    assert (config["generated"], config["neighbours"], config["grid"]) == (7, 15, 3)
    full = paper.get_config()
    assert full["steps"] == 72_000 and full["decay_every"] == 24_000
    assert full["time_limit"] is None and full["learning_rate"] == 1e-3


def test_run_writes_complete_records(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(
        ways=5, queries=2, test_queries=2, eval_episodes=4, eval_batch=2, steps=2, log_every=1,
        filters=8, generated=2, neighbours=2, candidates=8, gallery_classes=16,
        deformation_filters=4,
    )  # fmt: skip
    _, _, gallery = train.load_data(config)
    assert gallery.shape == (16, 28, 28, 1)
    (idemenet,), (protonet,), (gain,) = train.run(config, progress=False)
    for record in (idemenet, protonet):
        assert record["setting"] == "5w1s" and record["paper"] is None
        assert record["steps"] == 2 and 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
        assert record["transductive"] is True  # Conv-4's batch norm over the query set
    assert gain["value"] == pytest.approx(idemenet["value"] - protonet["value"])
    assert gain["transductive"] is True
