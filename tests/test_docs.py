"""Documentation that can go stale: runnable examples and the README's reproduced numbers."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

import metajax

# The result files' reader serves the benchmarks, and lives with them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from harness.results import _number, load_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def public_functions():
    for module, names in (
        (metajax, metajax.__all__),
        (metajax.datasets, metajax.datasets.__all__),
        (metajax.training.distributed, ["task_mesh", "replicate", "initialize", "check_tasks"]),
    ):
        for name in names:
            obj = getattr(module, name)
            if callable(obj) and not inspect.isclass(obj):
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize("name, function", list(public_functions()))
def test_every_public_function_has_a_runnable_example(name, function):
    # --doctest-modules runs these in CI; here we check that there is one to run.
    assert ">>>" in (inspect.getdoc(function) or ""), f"{name} has no Example"


def learner_table() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| learner | factory"))
    lines = text.split(header, 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_readme_numbers_come_from_result_files():
    records = load_results(ROOT / "benchmarks" / "results")
    checked = 0
    for learner, _, _, reproduced in learner_table():
        if reproduced == "no benchmark yet":
            continue
        benchmark = re.search(r"`(\w+)`", reproduced).group(1)
        mine = [r for r in records if r["benchmark"] == benchmark]
        assert mine, f"{learner}: no result file of benchmark {benchmark}"
        known = {_number(r[k], r["metric"]) for r in mine for k in ("value", "paper") if k in r}
        for number in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", reproduced):
            assert number in known, f"{learner}: {number} is in no {benchmark} result file"
            checked += 1
    assert checked >= 20


def test_readme_table_lists_every_learner_factory():
    factories = " ".join(row[1] for row in learner_table())
    functions = [
        name
        for name in metajax.__all__
        if callable(getattr(metajax, name)) and not inspect.isclass(getattr(metajax, name))
    ]
    learner_types = ("Learner", metajax.Learner)
    learners = [
        name
        for name in functions
        if inspect.signature(getattr(metajax, name)).return_annotation in learner_types
    ]
    assert len(learners) >= 15
    for name in learners:
        assert f"`{name}(" in factories or f"`{name}`" in factories, name
