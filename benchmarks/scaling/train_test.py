"""Smoke test of the scaling benchmark: two forced host devices, tiny shapes, the records."""

import pytest
from harness.testing import import_own

train, default = import_own(__file__, "train", "configs.default")


def tiny_config():
    config = default.get_config()
    config.update(
        devices=(1, 2),
        filters=4,
        blocks=1,  # one conv block compiles in a fraction of Conv-4's time
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
    runs = [train.run_child(config, n) for n in config["devices"]]
    rows = train.records(config, runs)
    assert len(rows) == 2 * 2 * len(config["learners"])
    for row in rows:
        assert row["value"] > 0 and row["metric"] == "meta-steps/s"
        assert row["device"].startswith(f"{row['devices']}x cpu")
        expected_tasks = row["devices"] if row["mode"] == "weak" else 2
        assert row["tasks"] == expected_tasks
    ones = [r for r in rows if r["devices"] == 1]
    assert all(r["efficiency"] == pytest.approx(1.0) for r in ones)
    assert "| ProtoNet | weak | 2 | 2 |" in train.table(rows)


def test_efficiency_definitions():
    base = {"steps_per_s": 10.0}
    assert train.efficiency({"steps_per_s": 10.0, "mode": "weak", "devices": 4}, base) == 1.0
    assert train.efficiency({"steps_per_s": 20.0, "mode": "strong", "devices": 4}, base) == 0.5
