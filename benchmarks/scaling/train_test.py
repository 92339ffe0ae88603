"""Smoke test of the scaling benchmark: two forced host devices, tiny shapes, the records."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# Every benchmark has its own `train`, `main` and `configs`: forget another folder's.
for name in [m for m in sys.modules if m in ("train", "main") or m.split(".")[0] == "configs"]:
    del sys.modules[name]

import main  # noqa: E402
from configs import default  # noqa: E402


def tiny_config():
    config = default.get_config()
    config.update(
        devices=(1, 2),
        filters=4,
        image=16,
        pool=(6, 4),
        queries=1,
        ways=2,
        tasks_per_device=1,
        meta_batch=2,
        warmup=1,
        steps=1,
    )
    return config


def test_one_and_two_devices_give_records_with_efficiency():
    config = tiny_config()
    runs = [main.run_child(config, n) for n in config["devices"]]
    rows = main.records(config, runs)
    assert len(rows) == 2 * 2 * len(config["learners"])
    for row in rows:
        assert row["value"] > 0 and row["metric"] == "meta-steps/s"
        assert row["device"].startswith(f"{row['devices']}x cpu")
        expected_tasks = row["devices"] if row["mode"] == "weak" else 2
        assert row["tasks"] == expected_tasks
    ones = [r for r in rows if r["devices"] == 1]
    assert all(r["efficiency"] == pytest.approx(1.0) for r in ones)
    assert "| ProtoNet | weak | 2 | 2 |" in main.table(rows)


def test_efficiency_definitions():
    base = {"steps_per_s": 10.0}
    assert main.efficiency({"steps_per_s": 10.0, "mode": "weak", "devices": 4}, base) == 1.0
    assert main.efficiency({"steps_per_s": 20.0, "mode": "strong", "devices": 4}, base) == 0.5
