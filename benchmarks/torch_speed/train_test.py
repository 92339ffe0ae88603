"""Smoke test of the benchmark: a tiny meta-step of each workload on each side, and the records."""

import json
import sys

import numpy as np
import pytest
from harness.testing import import_own

main, train, default = import_own(__file__, "main", "train", "configs.default")


def tiny_config(**overrides):
    config = default.get_config()
    config["protonet"].update(ways=3, queries=2, filters=4, blocks=1, image=(6, 6, 1), pool=(6, 4))
    config["lstm"].update(ways=2, instances=2, hidden=8, image_size=4, tasks=2, pool=(4, 3))
    config.update(steps=1, warmup=1, repetitions=1, torch_threads=1, **overrides)
    return config


@pytest.mark.parametrize("workload", ["protonet-1", "lstm"])
def test_measure_metajax_times_a_jitted_meta_step(workload):
    result = train.measure_metajax(tiny_config(), workload)
    assert result["seconds_per_step"] > 0 and result["compile_s"] > 0
    assert result["gflop_per_step"] > 0 and np.isfinite(result["final_loss"])


@pytest.mark.parametrize("workload", ["protonet-1", "lstm"])
def test_the_pytorch_side_runs_in_its_venv(workload):
    try:
        command = train.torch_command(tiny_config(), workload)
    except FileNotFoundError:
        pytest.skip("no PyTorch venv: bash benchmarks/maml_speed/setup_env.sh")
    result = train.run_json(command)
    assert result["framework"] == "pytorch" and result["seconds_per_step"] > 0
    assert np.isfinite(result["final_loss"])


def test_workload_names_are_checked():
    with pytest.raises(ValueError, match="workload must be protonet-<shots> or lstm"):
        train.parse("protonet")


def test_main_writes_one_record_per_workload(tmp_path, monkeypatch):
    def fake(config, workload, side, venv=None):
        seconds = 3.0 if side == "metajax" else 2.0
        return dict(
            seconds_per_step=seconds,
            first_step_s=2 * seconds,
            compile_s=1.0 if side == "metajax" else None,
            peak_rss_gb=0.5,
            gflop_per_step=6.0 if side == "metajax" else None,
        )

    monkeypatch.setattr(train, "measure", fake)
    monkeypatch.setattr(train, "torch_python", lambda venv=None: "python")
    monkeypatch.setattr(train, "matmul_peak_gflops", lambda: 100.0)
    monkeypatch.setitem(sys.modules, "train", train)  # main runs this train, patched
    records = main.main(["--results-dir", str(tmp_path)])
    assert [r["setting"] for r in records] == [
        "60w1s5q, 1 episode",
        "60w5s5q, 1 episode",
        "16 sequences of 50 steps, 200 units",
    ]
    for record in records:
        assert record["ratio_to_baseline"] == pytest.approx(1.5)
        assert record["gflop_per_s"] == pytest.approx(2.0)
        assert record["matmul_peak_gflop_per_s"] == 100.0
        assert record["baseline_value"] == 2.0 and record["baseline_peak_rss_gb"] == 0.5
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 3 and json.loads(files[0].read_text())["benchmark"] == "torch_speed"
