"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data."""

import pytest
from harness.testing import import_own, use_fake_data

train, default, paper = import_own(__file__, "train", "configs.default", "configs.paper")


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
def test_run_writes_complete_records(method, monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(steps={method: 2}, log_every=1, tasks=2, eval_episodes=4)
    config["mann"].update(memory_slots=16, memory_size=8, controller=16)
    config["lstm"].update(hidden=16)
    (records,) = train.run(config, methods=[method], progress=False)
    assert [r["setting"] for r in records] == [f"5-way instance {k}" for k in (1, 2, 3, 4, 5, 10)]
    assert [r["paper"] for r in records] == [train.PAPER[method][k] for k in (1, 2, 3, 4, 5, 10)]
    for r in records:
        assert r["steps"] == 2 and r["method"] == method and r["metric"] == "accuracy"
        assert 0.0 <= r["value"] <= 1.0 and r["ci95"] >= 0.0
        assert r["transductive"] is False  # no batch norm: the sequence alone
