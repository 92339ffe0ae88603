"""The accelerator reproduction command: its plan, its refusal on a CPU, and a dry run of
the whole path (probe, concurrent processes, time limits, packing, unpacking)."""

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import reproduce
from reproduce import PAPER_JOBS, Row, plan


def record(benchmark, method, setting, value, paper, **extra):
    return dict(
        benchmark=benchmark,
        method=method,
        dataset="omniglot-vinyals",
        setting=setting,
        metric="accuracy",
        value=value,
        paper=paper,
        **extra,
    )


def test_the_paper_plan_fits_the_budget_furthest_rows_first():
    records = [
        record("maml_omniglot", "MAML", "5w1s", 0.987, 0.987),  # at its paper: last
        record("snail_omniglot", "SNAIL", "20w1s", 0.08, 0.976),  # 90 points away
        record("relation_omniglot", "RelationNet", "5w1s", 0.94, 0.996),  # 5.6 points
    ]
    every, _ = plan(PAPER_JOBS, budget_s=7200, concurrency=4, history={}, records=records)
    names = [p.job.name for p in every]
    assert names[-1] == "maml-5w" and names.index("snail-20w1s") < names.index("relation-5w1s")
    # Unmeasured rows (no record at all) count as furthest: they come before SNAIL's.
    assert names.index("imaml-20w") < names.index("snail-20w1s")

    items, left_out = plan(PAPER_JOBS, budget_s=660, concurrency=4, history={}, records=records)
    assert [p.job.name for p in items] == names[: len(items)]  # the lowest priority left out
    limits = {p.time_limit for p in items}
    assert len(limits) == 1 and limits.pop() >= reproduce.MIN_TRAIN_S
    assert max(p.start_s + p.duration_s for p in items) <= 660 - reproduce.RESERVE_S
    assert {p.slot for p in items} == {0, 1, 2, 3}
    # What is left out says why: too little room, or a package that is not installed.
    whys = dict((job.name, why) for job, why in left_out)
    assert set(whys) | {p.job.name for p in items} == {job.name for job in PAPER_JOBS}
    assert all("does not fit" in why or "not installed" in why for why in whys.values())


def test_a_larger_budget_or_more_processes_plans_more_rows_or_more_time():
    def planned(budget, concurrency):
        items, _ = plan(
            PAPER_JOBS, budget_s=budget, concurrency=concurrency, history={}, records=[]
        )
        return len(items), min(p.time_limit for p in items if p.job.timed)

    few, short = planned(660, 2)
    more, _ = planned(660, 8)
    assert more > few
    assert planned(3600, 8)[1] > planned(660, 8)[1]


def test_a_measured_rate_caps_a_job_at_its_paper_schedule():
    # 6000 steps at 100 steps/s: 60 s finish the paper's schedule, so the job gets no more.
    done = record(
        "maml_omniglot",
        "MAML",
        "5w1s",
        0.95,
        0.987,
        config="paper",
        steps=1000,
        wall_s=10.0,
        scheduled_steps=6000,
        device="1x gpu (NVIDIA H200); host x86_64, 16 cores",
    )
    jobs = [j for j in PAPER_JOBS if j.name in ("maml-5w", "maml-20w")]
    history = {"jobs": {"maml-20w": {"overhead_s": 30.0}}}
    items, _ = plan(jobs, budget_s=660, concurrency=2, history=history, records=[done])
    by_name = {p.job.name: p for p in items}
    assert by_name["maml-5w"].time_limit == 60.0
    assert by_name["maml-20w"].time_limit > 500 and by_name["maml-20w"].overhead_s == 30.0


def test_the_concurrency_on_record_is_the_fewest_processes_near_the_best():
    phases = [
        dict(processes=1, total_steps_per_s=10.0),
        dict(processes=4, total_steps_per_s=30.0),
        dict(processes=8, total_steps_per_s=31.0),
    ]
    assert reproduce.measured_concurrency({"probe": {"phases": phases}}) == 4
    assert reproduce.measured_concurrency({}) is None


def test_every_job_names_a_config_its_benchmark_has():
    from harness.folder import BENCHMARKS, config_names

    for job in PAPER_JOBS:
        assert (job.config or "paper") in config_names(BENCHMARKS / job.folder), job.name
        command = reproduce._command(job, work=Path(), config="paper", time_limit=9, data_dir=".")
        assert ("--time-limit" in command) == job.timed


def test_rows_match_records_by_method_setting_and_dataset():
    row = Row(r"MatchingNet(-.+)?", "5w1s")
    assert row.matches(record("matching_omniglot", "MatchingNet-scale10", "5w1s", 0.9, 0.98))
    assert not row.matches(record("matching_omniglot", "MatchingNet", "20w1s", 0.9, 0.98))
    assert not Row("iMAML", "5w1s").matches(
        record("maml_omniglot", "iMAML (undamped CG)", "5w1s", 0.4, 0.99)
    )


def test_run_refuses_without_an_accelerator(tmp_path, capsys):
    assert reproduce.main(["run", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "plan:" in captured.out and "no accelerator here" in captured.err
    assert "--cpu" in captured.err and not list(tmp_path.glob("*.tar.gz"))


def test_dry_run_plans_runs_probes_packs_and_unpacks(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    command = [sys.executable, str(Path(reproduce.__file__)), "run", "--dry-run"]
    start = time.perf_counter()
    result = subprocess.run(
        [*command, "--out", str(out), "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"dry run: {wall:.1f} s")
    assert result.stdout.startswith("plan:")
    (archive,) = out.glob("reproduce-*.tar.gz")
    assert sorted(p.name for p in out.iterdir()) == [archive.name, "summary.md"]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"summary.json", "summary.md", "utilization.csv"} <= names
    assert {"logs/protonet-1shot.log", "logs/relation-5w1s.log", "logs/probe-2x-1.log"} <= names

    summary = json.loads((work / "summary.json").read_text())
    assert [p["processes"] for p in summary["probe"]["phases"]] == [1, 2]
    assert all(p["total_steps_per_s"] > 0 for p in summary["probe"]["phases"])
    for name in ("protonet-1shot", "relation-5w1s"):
        job = summary["jobs"][name]
        assert job["returncode"] == 0 and job["records"] == 1 and job["steps_per_s"] > 0
    assert "--time-limit" in summary["jobs"]["protonet-1shot"]["command"]
    assert "--time-limit" not in summary["jobs"]["relation-5w1s"]["command"]
    assert "| protonet-1shot | ProtoNet | omniglot-vinyals | 5w1s | 98.80 |" in summary["table"]

    # Unpacking takes accelerator records only, unless told: these were made on a CPU.
    results = tmp_path / "results"
    written = reproduce.unpack(archive, results_dir=results)
    assert not list(results.glob("*.json")) and (results / "reproduce" / "summary.json") in written
    with pytest.raises(ValueError, match="is a dry run: .* keeps accelerator runs"):
        reproduce.unpack(archive)  # into benchmarks/results/
    reproduce.unpack(archive, results_dir=results, include_cpu=True)
    (protonet,) = results.glob("protonet-omniglot__*.json")
    saved = json.loads(protonet.read_text())
    assert saved["fake_data"] and saved["concurrency"] == 2 and saved["reproduce_job"]
    assert saved["steps"] < 100_000 and saved["time_limit_s"] >= 1  # stopped by its time
    assert (results / "reproduce" / "logs" / "relation-5w1s.log").is_file()
    (relation,) = results.glob("relation-omniglot__*.json")
    assert json.loads(relation.read_text())["steps"] == 10  # stopped by its steps


def test_unpack_refuses_an_archive_that_is_not_a_run(tmp_path):
    archive = tmp_path / "other.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        (tmp_path / "x.txt").write_text("x")
        tar.add(tmp_path / "x.txt", "x.txt")
    with pytest.raises(ValueError, match="not a reproduce archive"):
        reproduce.unpack(archive, results_dir=tmp_path / "results")


def test_jobs_past_the_deadline_are_stopped_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "_command", lambda job, **kwargs: ["sleep", "60"])
    job = reproduce.Job("sleeper", "protonet_omniglot", (), (), timed=False, fixed_s=0.5)
    start = time.monotonic()
    (outcome,) = reproduce.execute(
        [reproduce.Planned(job, 0.0, 0.0, None)],
        work=tmp_path,
        concurrency=1,
        deadline=start + 1.0,
        clock_start=start,
        env=dict(os.environ),
        config="paper",
        data_dir=None,
        min_train_s=0.0,
    )
    assert outcome.stopped and outcome.returncode != 0 and time.monotonic() - start < 15
    assert reproduce.summary_table([outcome]).endswith(
        "| sleeper | no record (stopped) | | | | | | | | | |\n"
    )


def test_sigterm_stops_the_jobs_and_packs_what_finished(tmp_path, monkeypatch, capsys):
    # The first job's process sends this process a SIGTERM, as the device's time limit would.
    signal_parent = f"sleep 0.5; kill -TERM {os.getpid()}; sleep 60"
    monkeypatch.setattr(reproduce, "_command", lambda job, **kwargs: ["sh", "-c", signal_parent])
    out, work = tmp_path / "out", tmp_path / "work"
    argv = ["run", "--dry-run", "--out", str(out), "--workdir", str(work)]
    handler = signal.getsignal(signal.SIGTERM)
    assert reproduce.main(argv) == 130
    assert "interrupted: packing what finished" in capsys.readouterr().err
    (archive,) = out.glob("reproduce-*.tar.gz")
    assert json.loads((work / "summary.json").read_text())["interrupted"] is True
    assert signal.getsignal(signal.SIGTERM) is handler  # put back
