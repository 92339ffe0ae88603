"""The benchmarks' result records (benchmarks/harness/results.py, once metajax.results)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from harness.results import (  # noqa: E402
    render_results_table,
    update_results_markdown,
    write_result,
)


def test_write_and_render(tmp_path):
    record = dict(
        benchmark="b",
        method="ProtoNet",
        dataset="omniglot",
        setting="5w1s",
        metric="accuracy",
        value=0.9812,
        ci95=0.0021,
        paper=0.988,
        transductive=True,
        steps=10,
        wall_s=1.5,
    )
    path = write_result(tmp_path, record)
    saved = json.loads(path.read_text())
    for key in ("command", "device", "versions", "date"):
        assert key in saved
    assert saved["versions"]["jax"]
    table = render_results_table(tmp_path)
    assert "| 98.12 | 0.21 | 98.80 | yes | 10 |" in table
    md = tmp_path / "RESULTS.md"
    md.write_text("# R\n<!-- results:begin -->\nold\n<!-- results:end -->\ntail\n")
    update_results_markdown(md, tmp_path)
    text = md.read_text()
    assert "old" not in text and "98.12" in text and text.endswith("tail\n")
    with pytest.raises(ValueError, match=r"missing \['value'\]"):
        write_result(tmp_path, {k: v for k, v in record.items() if k != "value"})
    # An accuracy without the evaluation's kind could not be compared with its paper.
    for bad in ({}, {"transductive": "yes"}):
        unlabelled = {k: v for k, v in record.items() if k != "transductive"} | bad
        with pytest.raises(ValueError, match="boolean 'transductive'"):
            write_result(tmp_path, unlabelled)
    write_result(tmp_path, {**record, "metric": "mse", "transductive": None})
