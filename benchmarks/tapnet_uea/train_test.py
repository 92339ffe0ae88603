"""Smoke test of the benchmark: a few steps end to end on a generated BasicMotions-shaped
set (the real one comes with aeon)."""

import pytest
from harness.testing import import_own, use_fake_data

train, default = import_own(__file__, "train", "configs.default")

TINY = dict(
    filters=(4, 4, 4), lstm_units=4, mapping=(8, 4), attention_units=4, steps=2, log_every=1
)


def test_wilson_interval():
    low, high = train.wilson_interval(40, 40)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.9124, abs=1e-4)
    low, high = train.wilson_interval(20, 40)
    assert low < 0.5 < high and high - 0.5 == pytest.approx(0.5 - low)


def test_run_writes_complete_records(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(TINY, seed=3)
    ((record,),) = train.run(config, datasets=["BasicMotions"], progress=False)
    assert record["setting"] == "official split" and record["paper"] == 1.0
    assert record["steps"] == 2 and record["test_examples"] == 40 and record["seed"] == 3
    assert 0.0 <= record["ci95_low"] <= record["value"] <= record["ci95_high"] <= 1.0
    assert record["transductive"] is True  # its encoder's batch norm over the query set
