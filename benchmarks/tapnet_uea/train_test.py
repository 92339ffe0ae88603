"""Smoke test of the benchmark: a few steps end to end on BasicMotions (shipped by aeon)."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("aeon")
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Every benchmark has its own `train` and `configs`: forget another folder's.
for name in [m for m in sys.modules if m == "train" or m.split(".")[0] == "configs"]:
    del sys.modules[name]

import train  # noqa: E402
from configs import default  # noqa: E402

TINY = dict(
    filters=(4, 4, 4), lstm_units=4, mapping=(8, 4), attention_units=4, steps=2, log_every=1
)


def test_wilson_interval():
    low, high = train.wilson_interval(40, 40)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.9124, abs=1e-4)
    low, high = train.wilson_interval(20, 40)
    assert low < 0.5 < high and high - 0.5 == pytest.approx(0.5 - low)


def test_train_and_evaluate_writes_complete_records():
    config = default.get_config()
    config.update(TINY)
    (record,) = train.train_and_evaluate(config, "BasicMotions", progress=False)
    assert record["setting"] == "official split" and record["paper"] == 1.0
    assert record["steps"] == 2 and record["test_examples"] == 40
    assert 0.0 <= record["ci95_low"] <= record["value"] <= record["ci95_high"] <= 1.0
