"""The paper table from one command on one accelerator, within a wall-clock budget.

Accelerator time comes in short windows (about 15 minutes of one GPU, the machine's
start included, no network, at most 8 files back). This command turns such a window
into as many paper-length rows as it can::

    python benchmarks/reproduce.py prepare                  # here: the data that travels
    python benchmarks/reproduce.py run --out OUT            # there: plan, run, pack
    python benchmarks/reproduce.py unpack OUT/reproduce-*.tar.gz   # here: results/, RESULTS.md
    python benchmarks/reproduce.py run --dry-run --out /tmp/r      # the whole path, CPU, < 1 min

On this workplace's device tool, after ``prepare``: ``run`` with ``carry:
["benchmarks/.reproduce"]``, ``timeout_s: 600`` and the command ``python3
benchmarks/reproduce.py run --out $OUT --data-dir benchmarks/.reproduce/data``; nothing
is installed there (metajax runs from the tree). The default budget, 540 s, leaves the
command's 600 s limit room for the start and the packing.

``run`` does, in order:

1. **Plan** (printed first): every benchmark's paper configuration (``--config
   paper``) as one job per trained model, ordered by how far its rows are from their
   paper (an unmeasured row first), each given a training time limit (the trainers'
   ``time_limit``) so that the whole command, start-up, compilation and evaluation
   included, ends inside ``--budget-s``. Where the record of an earlier accelerator
   run has a job's steps per second and start-up seconds, the plan uses them (a job
   that would finish its paper schedule sooner is not given more); otherwise it
   assumes :data:`DEFAULT_OVERHEAD_S`. Jobs that do not fit at
   :data:`MIN_TRAIN_S` seconds of training each are left out, lowest priority first.
2. **Probe** (only while no measurement is on record): the same short MAML job alone,
   then ``--concurrency`` copies at once; their summed steps per second say whether
   sharing the device pays. The measurement is kept (``results/reproduce/``), and
   later runs take their default concurrency from it.
3. **Run** the plan with ``--concurrency`` processes sharing the device
   (``XLA_PYTHON_CLIENT_PREALLOCATE=false``), each benchmark's own ``main.py``, a
   log per job, the device's utilisation sampled each second by ``nvidia-smi``.
   Whatever still runs at the deadline is stopped; what it finished is kept.
4. **Pack** the result files, logs, utilisation log and summary into one archive in
   ``--out`` (with ``summary.md`` beside it: two files), and print one line per row:
   paper against measured. A SIGTERM or Ctrl-C stops the jobs and packs what ended.

``unpack`` puts an archive's accelerator records (``*__gpu.json``) beside the CPU ones
in ``benchmarks/results/``, keeps the run's summary, logs and utilisation under
``benchmarks/results/reproduce/`` for the next plan, and refreshes ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import heapq
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.append(str(ROOT))  # metajax from this tree where it is not installed (the accelerator)

from harness.results import (  # noqa: E402
    REQUIRED,
    _number,
    load_results,
    update_results_markdown,
)

from metajax.core.io import write_atomic  # noqa: E402

RESULTS = BENCHMARKS / "results"
RECORD = RESULTS / "reproduce"  # the last accelerator run's summary, for the next plan
TRAVEL = BENCHMARKS / ".reproduce"  # what `prepare` gathers to travel with the tree (ignored)

# Start-up, data, compilation and evaluation of one job on an accelerator, until a run
# on record says otherwise (the MAML row on record took about 60 s beyond its training).
DEFAULT_OVERHEAD_S = 75.0
# The least training a planned job gets: fewer rows, each nearer its paper, rather than
# every row a minute long (--min-train-s).
MIN_TRAIN_S = 120.0
RESERVE_S = 20.0  # the parent's own start, data warm-up and packing
PROBE_S = 25.0
# The default budget: the device tool cuts one command at 600 s (its start and transfers
# aside), and 15 minutes of device time hold the machine's start, this command and a rerun.
DEFAULT_BUDGET_S = 540.0
DRY_BUDGET_S = 120.0  # a deadline only: the dry run's jobs train DRY_TRAIN_S each
DRY_TRAIN_S = 5.0
GRACE_S = 15.0  # kept free before the deadline when a late job's time limit is shortened


@dataclasses.dataclass(frozen=True)
class Row:
    """A result row that a job produces, matched against records by full regexes."""

    method: str
    setting: str
    dataset: str = "omniglot-.*"

    def matches(self, record: dict) -> bool:
        return all(
            re.fullmatch(pattern, str(record.get(key, "")))
            for key, pattern in (
                ("method", self.method),
                ("setting", self.setting),
                ("dataset", self.dataset),
            )
        )


@dataclasses.dataclass(frozen=True)
class Job:
    """One trained model of one benchmark: ``benchmarks/<folder>/main.py <args>``.

    Attributes:
      name: unique, used for its log and work folders.
      folder: the benchmark folder.
      args: its options beyond the config, time limit and folders.
      rows: the rows its records fill (for the priority and the final table).
      needs: modules that must import, else the job is left out with the reason.
      timed: whether it takes ``--time-limit``; an untimed job costs ``fixed_s``.
      fixed_s: the planned seconds of an untimed job.
      config: its config module, where it is not the run's (``paper``, or ``default`` in a
        dry run): the speed benchmark has one schedule.
    """

    name: str
    folder: str
    args: tuple[str, ...]
    rows: tuple[Row, ...]
    needs: tuple[str, ...] = ()
    timed: bool = True
    fixed_s: float = 0.0
    config: str | None = None


def _paper_jobs() -> list[Job]:
    """Every paper row, in the issue's order (the tie-break after distance to the paper)."""
    jobs = [
        Job(
            f"protonet-{k}shot",
            "protonet_omniglot",
            ("--shots", str(k)),
            (Row("ProtoNet", f"5w{k}s"), Row("ProtoNet", f"20w{k}s")),
        )
        for k in (1, 5)
    ]
    jobs += [
        Job(
            f"matching-{s}",
            "matching_omniglot",
            ("--settings", s),
            (Row(r"MatchingNet(-.+)?", s),),
        )
        for s in ("5w1s", "5w5s", "20w1s", "20w5s")
    ]
    jobs += [
        Job(f"relation-{s}", "relation_omniglot", ("--settings", s), (Row("RelationNet", s),))
        for s in ("5w1s", "20w1s")
    ]
    jobs.append(
        Job(
            "siamese-lake20",
            "siamese_omniglot",
            (),
            (Row("Siamese", r"20w1s-within-alphabet", "omniglot-lake"),),
        )
    )
    jobs += [
        Job(
            f"{method.lower()}-{ways}w",
            "maml_omniglot",
            ("--methods", method, "--ways", str(ways)),
            (Row(method, f"{ways}w1s"),),
        )
        for method in ("MAML", "FOMAML", "iMAML")
        for ways in (5, 20)
    ]
    jobs += [
        Job(
            f"{method.lower()}-{ways}w{shots}s",
            "maml_omniglot",
            ("--methods", method, "--ways", str(ways), "--shots", str(shots)),
            (Row(method, f"{ways}w{shots}s"),),
        )
        for method, ways in (
            ("Reptile", 5),
            ("Reptile", 20),
            ("Meta-SGD", 5),
            ("Meta-SGD", 20),
            ("ANIL", 20),
        )
        for shots in (1, 5)
    ]
    jobs += [
        Job(
            f"mann-{method.lower()}",
            "mann_omniglot",
            ("--methods", method),
            (Row(method, r"5-way instance \d+"),),
        )
        for method in ("MANN", "LSTM")
    ]
    jobs += [
        Job(f"snail-{s}", "snail_omniglot", ("--settings", s), (Row("SNAIL", s),))
        for s in ("5w1s", "20w1s")
    ]
    jobs += [
        Job(f"metanet-{s}", "metanet_omniglot", ("--settings", s), (Row(r"MetaNet(-.+)?", s),))
        for s in ("5w1s", "20w1s")
    ]
    jobs.append(
        Job(
            "idemenet-20w1s",
            "idemenet_omniglot",
            (),
            (Row("IDeMe-Net", "20w1s"), Row("ProtoNet", "20w1s", r"omniglot-vinyals")),
        )
    )
    jobs += [
        Job(
            f"tapnet-{name}",
            "tapnet_uea",
            ("--datasets", name),
            (Row("TapNet", ".*", f"uea-{name}"),),
            needs=("aeon",),
        )
        for name in ("BasicMotions", "JapaneseVowels")
    ]
    jobs.append(
        Job(
            "maml-speed-learn2learn",
            "maml_speed",
            ("--methods", "maml", "learn2learn", "--steps", "20", "--warmup", "3"),
            (Row(r"MAML \(.*\)", r".*", "omniglot-shaped"),),
            needs=("learn2learn",),
            timed=False,
            fixed_s=150.0,
            config="default",
        )
    )
    return jobs


PAPER_JOBS = _paper_jobs()

# The probe: MAML 5-way 1-shot at the paper's meta-batch, logged often enough to time it.
PROBE_JOB = Job(
    "probe",
    "maml_omniglot",
    (
        "--methods",
        "MAML",
        "--ways",
        "5",
        "--set",
        "log_every=50",
        "--set",
        "eval_episodes=10",
        "--steps",
        "1000000",
    ),
    (),
)

# The dry run's stand-ins: tiny models on generated data. ProtoNet is stopped by its time
# limit; Relation Networks runs untimed (as the speed benchmark does) to its 10 steps.
_TINY = ("--fake-data", "--set", "log_every=1", "--set", "eval_episodes=4", "--set", "queries=1")
DRY_JOBS = [
    Job(
        "protonet-1shot",
        "protonet_omniglot",
        ("--shots", "1", "--steps", "100000", "--set", "train_ways=5", "--set", "test_ways=(5,)")
        + _TINY,
        (Row("ProtoNet", "5w1s"),),
    ),
    Job(
        "relation-5w1s",
        "relation_omniglot",
        ("--settings", "5w1s", "--steps", "10", "--set", "time_limit=None", *_TINY),
        (Row("RelationNet", "5w1s"),),
        timed=False,
        fixed_s=10.0,
    ),
]
DRY_PROBE_JOB = dataclasses.replace(DRY_JOBS[0], args=(*DRY_JOBS[0].args, "--steps", "20"))


# ---------------------------------------------------------------------------- records


def distance_to_paper(job: Job, records: Sequence[dict]) -> float:
    """The largest gap (paper minus best measured, any device) among the job's rows.

    A row never measured counts as its whole paper value away; a row without a paper
    number counts as 0.
    """
    gap = 0.0
    for row in job.rows:
        mine = [r for r in records if r.get("benchmark") == job.folder and row.matches(r)]
        papers = [r["paper"] for r in mine if r.get("paper") is not None]
        if not mine:
            gap = max(gap, 1.0)
        elif papers:
            gap = max(gap, max(papers) - max(r["value"] for r in mine))
    return gap


def load_history(record_dir: Path = RECORD) -> dict:
    """The last accelerator run's summary (``summary.json``), or ``{}``."""
    try:
        return json.loads((Path(record_dir) / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def measured_concurrency(history: dict) -> int | None:
    """The process count with the most total steps per second in the recorded probe."""
    probe = history.get("probe") or {}
    phases = probe.get("phases") or []
    rated = [p for p in phases if p.get("total_steps_per_s")]
    if len(rated) < 2:
        return None
    best = max(p["total_steps_per_s"] for p in rated)
    # The fewest processes within 10% of the best: more processes cost memory and
    # compile time for nothing.
    return min(p["processes"] for p in rated if p["total_steps_per_s"] >= 0.9 * best)


# ---------------------------------------------------------------------------- planning


@dataclasses.dataclass
class Planned:
    job: Job
    priority: float  # distance to the paper
    overhead_s: float
    cap_s: float | None  # training seconds after which its paper schedule is done
    time_limit: float | None = None
    start_s: float = 0.0
    slot: int = 0

    @property
    def duration_s(self) -> float:
        return self.overhead_s + (self.job.fixed_s if not self.job.timed else self.time_limit)


def _estimates(job: Job, history: dict, records: Sequence[dict], default_overhead: float):
    """(overhead seconds, seconds to the paper schedule's end or None) from the record."""
    past = (history.get("jobs") or {}).get(job.name) or {}
    overhead = past.get("overhead_s") or default_overhead
    rate = past.get("steps_per_s")
    scheduled = None
    for r in records:
        if r.get("benchmark") != job.folder or not any(row.matches(r) for row in job.rows):
            continue
        if r.get("config") != "paper":
            continue  # another schedule, another step count
        scheduled = scheduled or r.get("scheduled_steps")
        # wall_s holds the compilation too: the rate is a little low, the cap a little long.
        if rate is None and r.get("steps") and r.get("wall_s") and _on_accelerator(r):
            rate = r["steps"] / r["wall_s"]
    cap = scheduled / rate if scheduled and rate else None
    return float(overhead), cap


def _on_accelerator(record: dict) -> bool:
    return re.match(r"\d+x (?!cpu)", str(record.get("device", ""))) is not None


def _schedule(items: list[Planned], slots: int, train_s: float) -> float:
    """Assigns start times and slots in priority order (as the runner does); the makespan."""
    free = [(0.0, s) for s in range(slots)]
    heapq.heapify(free)
    end = 0.0
    for item in items:
        if item.job.timed:
            item.time_limit = train_s if item.cap_s is None else min(train_s, item.cap_s)
        start, slot = heapq.heappop(free)
        item.start_s, item.slot = start, slot
        finish = start + item.duration_s
        end = max(end, finish)
        heapq.heappush(free, (finish, slot))
    return end


def plan(
    jobs: Sequence[Job],
    *,
    budget_s: float,
    concurrency: int,
    history: dict,
    records: Sequence[dict],
    default_overhead_s: float = DEFAULT_OVERHEAD_S,
    min_train_s: float = MIN_TRAIN_S,
    max_train_s: float | None = None,
    reserve_s: float = RESERVE_S,
    importable=lambda module: importlib.util.find_spec(module) is not None,
) -> tuple[list[Planned], list[tuple[Job, str]]]:
    """The jobs that fit in ``budget_s``, with their time limits; and those left out, why.

    Every job gets the same training time (its cap, if its paper schedule ends sooner),
    the largest that lets the priority-ordered schedule on ``concurrency`` slots end
    inside the budget; while even :data:`MIN_TRAIN_S` does not fit, the lowest
    priority job is dropped.
    """
    left_out = []
    runnable = []
    for job in jobs:
        missing = [m for m in job.needs if not importable(m)]
        if missing:
            left_out.append((job, f"needs {', '.join(missing)}, not installed here"))
            continue
        overhead, cap = _estimates(job, history, records, default_overhead_s)
        runnable.append(Planned(job, distance_to_paper(job, records), overhead, cap))
    order = {job.name: i for i, job in enumerate(jobs)}
    runnable.sort(key=lambda p: (-p.priority, order[p.job.name]))

    available = budget_s - reserve_s
    while runnable:
        if _schedule(runnable, concurrency, min_train_s) <= available:
            low, high = min_train_s, min(available, max_train_s or available)
            for _ in range(40):  # bisection on the common training time
                middle = (low + high) / 2
                low, high = (
                    (middle, high)
                    if _schedule(runnable, concurrency, middle) <= available
                    else (low, middle)
                )
            _schedule(runnable, concurrency, low)
            for item in runnable:
                if item.time_limit is not None:
                    item.time_limit = float(int(item.time_limit))
            return runnable, left_out
        dropped = runnable.pop()
        left_out.append((dropped.job, f"does not fit in --budget-s {budget_s:g}"))
    return [], left_out


def format_plan(items: Sequence[Planned], left_out, *, budget_s: float, concurrency: int) -> str:
    lines = [
        f"plan: {len(items)} jobs on {concurrency} concurrent processes, budget {budget_s:g} s",
        f"{'job':<24} {'gap':>6} {'slot':>4} {'start s':>8} {'train s':>8} "
        f"{'overhead s':>10}  command",
    ]
    for p in items:
        train = f"{p.time_limit:.0f}" if p.job.timed else f"~{p.job.fixed_s:.0f}"
        lines.append(
            f"{p.job.name:<24} {100 * p.priority:>6.1f} {p.slot:>4} {p.start_s:>8.0f} "
            f"{train:>8} {p.overhead_s:>10.0f}  {p.job.folder}/main.py {' '.join(p.job.args)}"
        )
    for job, why in left_out:
        lines.append(f"{job.name:<24} left out: {why}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- running


@dataclasses.dataclass
class Outcome:
    name: str
    command: list[str]
    time_limit: float | None
    started_s: float
    ended_s: float | None = None
    returncode: int | None = None
    stopped: bool = False  # at the deadline, or when the command was interrupted
    steps_per_s: float | None = None
    train_wall_s: float | None = None
    records: list[dict] = dataclasses.field(default_factory=list)

    @property
    def overhead_s(self) -> float | None:
        if self.ended_s is None or self.train_wall_s is None:
            return None
        return round(self.ended_s - self.started_s - self.train_wall_s, 1)


def _job_dir(work: Path, name: str) -> Path:
    return work / "jobs" / name


def _command(job: Job, *, work: Path, config: str, time_limit, data_dir) -> list[str]:
    folder = _job_dir(work, job.name)
    command = [sys.executable, str(BENCHMARKS / job.folder / "main.py")]
    command += ["--config", job.config or config]
    command += list(job.args)
    if job.timed and time_limit is not None:
        command += ["--time-limit", f"{time_limit:g}"]
    if job.folder != "maml_speed":
        command += ["--workdir", str(folder / "work")]
    if data_dir is not None and job.folder.endswith("_omniglot"):
        command += ["--data-dir", str(data_dir)]
    return [*command, "--results-dir", str(folder / "results")]


def training_rate(workdir: Path) -> tuple[float | None, float | None]:
    """(steps per second after the first logged step, training seconds) from the
    trainers' metrics JSONL files: the first log holds the compilation, so it is left out."""
    rates, wall = [], 0.0
    for path in sorted(Path(workdir).glob("**/*.jsonl")):
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        lines = [r for r in lines if "step" in r and "wall_s" in r]
        if lines:
            wall += lines[-1]["wall_s"]
        if len(lines) >= 2 and lines[-1]["wall_s"] > lines[0]["wall_s"]:
            rates.append(
                (lines[-1]["step"] - lines[0]["step"]) / (lines[-1]["wall_s"] - lines[0]["wall_s"])
            )
    rate = sum(rates) / len(rates) if rates else None
    return (None if rate is None else round(rate, 2)), (round(wall, 1) if wall else None)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def execute(
    items: Sequence[Planned],
    *,
    work: Path,
    concurrency: int,
    deadline: float,
    clock_start: float,
    env: dict,
    config: str,
    data_dir,
    min_train_s: float,
    outcomes: list[Outcome] | None = None,
    echo=print,
) -> list[Outcome]:
    """Runs ``items`` in order on ``concurrency`` slots; stops what outlives ``deadline``
    (a ``time.monotonic`` value). A job that no longer fits is shortened, or skipped.

    Each finished job is appended to ``outcomes`` at once, so that a caller that is
    interrupted (SIGTERM, Ctrl-C) still holds, and can pack, what ended; the jobs still
    running then are stopped and appended too.
    """
    pending = list(items)
    running: dict[str, tuple[subprocess.Popen, Outcome]] = {}
    outcomes = [] if outcomes is None else outcomes

    def finish(name: str, process: subprocess.Popen, outcome: Outcome) -> None:
        if process.poll() is None:
            outcome.stopped = True
            _stop(process)
        outcome.returncode = process.returncode
        outcome.ended_s = round(time.monotonic() - clock_start, 1)
        folder = _job_dir(work, name)
        outcome.steps_per_s, outcome.train_wall_s = training_rate(folder / "work")
        outcome.records = load_results(folder / "results")
        timed = [r for r in outcome.records if r.get("steps") and r.get("wall_s")]
        if outcome.steps_per_s is None and timed:
            # Logged too rarely to time: the record's rate, compilation included.
            outcome.steps_per_s = round(max(r["steps"] / r["wall_s"] for r in timed), 2)
        _annotate(folder / "results", name=name, concurrency=concurrency, outcome=outcome)
        del running[name]
        outcomes.append(outcome)
        status = "stopped" if outcome.stopped else f"exit {outcome.returncode}"
        echo(
            f"[{outcome.ended_s:6.0f} s] end {name}: {status}, {len(outcome.records)} records, "
            f"{outcome.steps_per_s} steps/s"
        )

    try:
        while pending or running:
            now = time.monotonic()
            while pending and len(running) < concurrency:
                item = pending.pop(0)
                time_limit = item.time_limit
                if item.job.timed:
                    room = deadline - now - item.overhead_s - GRACE_S / 2
                    time_limit = min(time_limit, room)
                    if time_limit < min_train_s / 2:
                        echo(f"[{now - clock_start:6.0f} s] skip {item.job.name}: no time left")
                        continue
                    time_limit = float(int(time_limit))
                elif now + item.duration_s > deadline:
                    echo(f"[{now - clock_start:6.0f} s] skip {item.job.name}: no time left")
                    continue
                command = _command(
                    item.job, work=work, config=config, time_limit=time_limit, data_dir=data_dir
                )
                folder = _job_dir(work, item.job.name)
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / "log.txt", "w") as log:
                    process = subprocess.Popen(
                        command,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=ROOT,
                        start_new_session=True,  # stopped with its children
                    )
                outcome = Outcome(item.job.name, command, time_limit, round(now - clock_start, 1))
                running[item.job.name] = (process, outcome)
                echo(f"[{now - clock_start:6.0f} s] start {item.job.name}, {time_limit=} s")
            time.sleep(0.2)
            for name, (process, outcome) in list(running.items()):
                if process.poll() is not None or time.monotonic() >= deadline:
                    finish(name, process, outcome)
    finally:
        for name, (process, outcome) in list(running.items()):
            finish(name, process, outcome)
    return outcomes


def _annotate(results: Path, *, name: str, concurrency: int, outcome: Outcome) -> None:
    """Adds the run's circumstances to each record the job wrote (and to ``outcome``'s)."""
    circumstances = dict(
        reproduce_job=name,
        concurrency=concurrency,
        time_limit_s=outcome.time_limit,
        steps_per_s=outcome.steps_per_s,
    )
    for path in sorted(Path(results).glob("*.json")):
        _write_json(path, {**json.loads(path.read_text()), **circumstances})
    for record in outcome.records:
        record.update(circumstances)


def _write_json(path: Path, value) -> None:
    write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def probe(
    job: Job,
    *,
    processes: Sequence[int],
    seconds: float,
    work: Path,
    deadline: float,
    env: dict,
    config: str,
    data_dir,
    echo=print,
) -> dict:
    """Steps per second of ``job`` alone and as ``n`` concurrent copies, for each ``n``."""
    phases = []
    for n in processes:
        items = [
            Planned(dataclasses.replace(job, name=f"probe-{n}x-{i}"), 0.0, 0.0, None, seconds)
            for i in range(n)
        ]
        start = time.monotonic()
        outcomes = execute(
            items,
            work=work / "probe",
            concurrency=n,
            deadline=deadline,
            clock_start=start,
            env=env,
            config=config,
            data_dir=data_dir,
            min_train_s=0.0,
            echo=echo,
        )
        rates = [o.steps_per_s for o in outcomes]
        total = round(sum(rates), 2) if all(r is not None for r in rates) else None
        phases.append(dict(processes=n, steps_per_s_each=rates, total_steps_per_s=total))
        echo(f"probe: {n} process(es): {total} steps/s in all ({rates})")
    return dict(
        job=job.name, folder=job.folder, args=list(job.args), seconds=seconds, phases=phases
    )


class Sampler:
    """``nvidia-smi``'s utilisation and memory each second into ``path``, where it exists."""

    def __init__(self, path: Path):
        self.process = None
        smi = shutil.which("nvidia-smi")
        if smi is None:
            path.write_text("no nvidia-smi on this machine: utilisation not sampled\n")
            return
        self.file = open(path, "w")
        self.process = subprocess.Popen(
            [
                smi,
                "--query-gpu=timestamp,utilization.gpu,memory.used,memory.total",
                "--format=csv",
                "-l",
                "1",
            ],
            stdout=self.file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.file.close()


def utilisation_summary(path: Path) -> dict | None:
    """Mean and peak GPU utilisation (%) and peak memory (MiB) of a sampler log."""
    util, memory = [], []
    for line in Path(path).read_text().splitlines()[1:]:
        fields = [f.strip() for f in line.split(",")]
        try:
            util.append(float(fields[1].split()[0]))
            memory.append(float(fields[2].split()[0]))
        except (IndexError, ValueError):
            continue
    if not util:
        return None
    return dict(
        samples=len(util),
        mean_utilization_pct=round(sum(util) / len(util), 1),
        peak_utilization_pct=max(util),
        peak_memory_mib=max(memory),
    )


# ---------------------------------------------------------------------------- packing


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """One line per row: job, row, paper, measured, steps, training seconds, device."""
    lines = [
        "| job | method | dataset | setting | paper | measured | steps | train s | steps/s "
        "| device | concurrency |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        for r in o.records:
            paper, value = (_number(r.get(k), r["metric"]) for k in ("paper", "value"))
            lines.append(
                f"| {o.name} | {r['method']} | {r['dataset']} | {r['setting']} | "
                f"{paper} | {value} | {r.get('steps', '–')} | "
                f"{r.get('wall_s', '–')} | {o.steps_per_s or '–'} | {r.get('device', '–')} | "
                f"{r.get('concurrency', '–')} |"
            )
        if not o.records:
            why = "stopped" if o.stopped else f"exit {o.returncode}"
            lines.append(f"| {o.name} | no record ({why}) | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def pack(work: Path, outcomes: Sequence[Outcome], summary: dict, out: Path) -> Path:
    """One archive in ``out`` of what the run left in ``work``: results/, logs/,
    utilization.csv, summary.json and .md; and summary.md beside it, readable at once."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"reproduce-{stamp}.tar.gz"
    _write_json(work / "summary.json", summary)
    probe = summary.get("probe") or {}
    throughput = ", ".join(
        f"{p['processes']} process(es): {p['total_steps_per_s']} steps/s"
        for p in probe.get("phases", [])
    )
    head = [
        f"# reproduce, {summary['date']}",
        f"{summary['device']}; {summary['wall_s']} s of a {summary['budget_s']:g} s budget; "
        f"{summary['concurrency']} processes at once"
        + ("; interrupted" if summary.get("interrupted") else ""),
        f"probe ({probe.get('job', 'none')}): {throughput or 'not run'}",
        f"utilisation: {summary.get('utilization') or 'not sampled'}",
    ]
    (work / "summary.md").write_text("\n\n".join(head) + "\n\n" + summary["table"])
    shutil.copy(work / "summary.md", out / "summary.md")
    with tarfile.open(archive, "w:gz") as tar:
        for o in outcomes:
            folder = _job_dir(work, o.name)
            for path in sorted((folder / "results").glob("*.json")):
                tar.add(path, f"results/{path.name}")
            if (folder / "log.txt").exists():
                tar.add(folder / "log.txt", f"logs/{o.name}.log")
        for path in sorted((work / "probe" / "jobs").glob("*/log.txt")):
            tar.add(path, f"logs/{path.parent.name}.log")
        for name in ("utilization.csv", "summary.json", "summary.md"):
            if (work / name).exists():
                tar.add(work / name, name)
    return archive


_MEMBER = re.compile(
    r"(results/[A-Za-z0-9.+_-]+\.json|logs/[A-Za-z0-9._-]+\.log|utilization\.csv|summary\.(json|md))"
)


def unpack(
    archive: str | os.PathLike, *, results_dir: Path = RESULTS, include_cpu: bool = False
) -> list[Path]:
    """Puts an archive's records into ``results_dir`` and its run files under
    ``results_dir/reproduce/``; refreshes RESULTS.md when ``results_dir`` is the default.

    Only accelerator records are taken (``*__gpu.json`` and the like), so that a CPU or
    dry run can never replace a CPU budget row, unless ``include_cpu``; records made on
    generated data (``--fake-data``) are never taken into the default folder.
    """
    results_dir = Path(results_dir)
    official = results_dir.resolve() == RESULTS.resolve()
    record_dir = results_dir / "reproduce"
    written = []
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and _MEMBER.fullmatch(m.name)]
        if not any(m.name == "summary.json" for m in members):
            raise ValueError(f"{archive} is not a reproduce archive: it has no summary.json")
        summary = json.loads(tar.extractfile("summary.json").read())
        if official and not include_cpu and (summary["dry_run"] or summary["device"][:3] == "cpu"):
            # Its summary would become the record that the next accelerator plan reads.
            raise ValueError(
                f"{archive} is a {'dry' if summary['dry_run'] else 'CPU'} run: "
                f"{RESULTS} keeps accelerator runs; give --results-dir another folder"
            )
        if (record_dir / "logs").exists():
            shutil.rmtree(record_dir / "logs")  # the logs of one run: the latest
        for member in members:
            data = tar.extractfile(member).read()
            if member.name.startswith("results/"):
                record = json.loads(data)
                missing = [k for k in REQUIRED if k not in record]
                if missing:
                    raise ValueError(f"{archive}:{member.name} is missing {missing}")
                # write_result names an accelerator's record with a fifth part, its backend.
                accelerator = len(Path(member.name).stem.split("__")) == 5
                if not (accelerator or include_cpu) or (record.get("fake_data") and official):
                    continue
                target = results_dir / Path(member.name).name
            else:
                target = record_dir / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            written.append(write_atomic(target, data))
    if official:
        update_results_markdown(BENCHMARKS / "RESULTS.md", results_dir)
    return written


# ---------------------------------------------------------------------------- commands


def _backend() -> tuple[str, str]:
    import jax

    devices = jax.devices()
    return jax.default_backend(), devices[0].device_kind if devices else "none"


def _warm_data(data_dir, env: dict) -> None:
    """Decodes Omniglot once, before the jobs start, so they do not all decode at once."""
    from metajax.datasets import load_omniglot

    cache = env["METAJAX_CACHE_DIR"]
    for protocol in ("vinyals", "lake"):
        load_omniglot(data_dir, protocol=protocol, cache_dir=cache, download=False)


def _data_dir(given, *, travelled: bool = True) -> Path | None:
    """The first folder holding omniglot/: ``given``, $METAJAX_DATA_DIR, what ``prepare``
    copied (``travelled``), the workplace's ../shared/data."""
    candidates = [given, os.environ.get("METAJAX_DATA_DIR")]
    candidates += [TRAVEL / "data"] if travelled else []
    for candidate in [*candidates, ROOT.parent / "shared" / "data"]:
        if candidate and (Path(candidate) / "omniglot").is_dir():
            return Path(candidate).resolve()
    return None


def run(args) -> int:
    if hasattr(sys.stdout, "reconfigure"):  # the device log shows progress as it goes
        sys.stdout.reconfigure(line_buffering=True)
    out = Path(args.out).resolve()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="reproduce-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    clock_start = time.monotonic()
    history = {} if args.dry_run else load_history()
    records = load_results(RESULTS)
    recorded = measured_concurrency(history)
    concurrency = args.concurrency or recorded or (2 if args.dry_run else 4)

    paper_budget = DEFAULT_BUDGET_S if args.dry_run else args.budget_s
    paper_plan, left_out = plan(
        PAPER_JOBS,
        budget_s=paper_budget,
        concurrency=concurrency,
        history=history,
        records=records,
        min_train_s=MIN_TRAIN_S if args.dry_run else args.min_train_s,
    )
    print(format_plan(paper_plan, left_out, budget_s=paper_budget, concurrency=concurrency))
    print(
        f"concurrency {concurrency}: "
        + (
            "given"
            if args.concurrency
            else f"measured best on record ({RECORD / 'summary.json'})"
            if recorded
            else "not measured yet: the probe runs first"
        ),
        flush=True,
    )

    backend, kind = _backend()
    if backend == "cpu" and not (args.cpu or args.dry_run):
        print(
            "reproduce: no accelerator here (JAX's default backend is 'cpu'). The paper "
            "schedules take hours to days per row on a CPU: run this on a GPU or TPU "
            "machine, or pass --cpu to run anyway, or --dry-run to check the pipeline.",
            file=sys.stderr,
        )
        return 2

    data_dir = _data_dir(args.data_dir)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "METAJAX_CACHE_DIR": os.environ.get("METAJAX_CACHE_DIR", str(TRAVEL / "cache")),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        # The probe's programs and a job's are the same: compiled once, read from here after.
        "JAX_COMPILATION_CACHE_DIR": os.environ.get(
            "JAX_COMPILATION_CACHE_DIR", str(work / "jax-cache")
        ),
        # The speed job's learn2learn side: this Python, where learn2learn imports (its
        # `needs`), unless another is named.
        "L2L_PYTHON": os.environ.get("L2L_PYTHON", sys.executable),
    }
    if args.dry_run:
        jobs, probe_job, config, probe_s = DRY_JOBS, DRY_PROBE_JOB, "default", DRY_TRAIN_S
        # Tiny jobs: a CPU process starts and compiles in seconds, and trains DRY_TRAIN_S.
        sizing = dict(default_overhead_s=15.0, min_train_s=1.0, max_train_s=DRY_TRAIN_S)
    else:
        if data_dir is None:
            print(
                "reproduce: no omniglot/ found: give --data-dir (or run `prepare` first)",
                file=sys.stderr,
            )
            return 2
        _warm_data(data_dir, env)
        site = _install_wheels(work)
        if site is not None:
            env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(site)])
        jobs, probe_job, config, probe_s = PAPER_JOBS, PROBE_JOB, "paper", args.probe_s
        sizing = dict(
            reserve_s=RESERVE_S,
            min_train_s=args.min_train_s,
            importable=functools.cache(lambda module: _imports(module, env)),
        )
    budget = args.budget_s

    def sized(spent: float) -> list[Planned]:
        items, left_out = plan(
            jobs,
            budget_s=budget - spent,
            concurrency=concurrency,
            history=history,
            records=records,
            **sizing,
        )
        print(format_plan(items, left_out, budget_s=budget - spent, concurrency=concurrency))
        return items

    print(f"device: {backend} ({kind}); data: {data_dir}; jobs' folders: {work}", flush=True)
    items = sized(time.monotonic() - clock_start)  # after the data's warm-up
    sampler = Sampler(work / "utilization.csv")
    outcomes: list[Outcome] = []
    measured_probe, interrupted = None, False
    # The accelerator's command limit may end this process first: a SIGTERM stops the
    # jobs and packs what they finished, as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if (recorded is None and not args.concurrency and probe_s > 0) or args.probe:
            measured_probe = probe(
                probe_job,
                processes=sorted({1, concurrency}),
                seconds=probe_s,
                work=work,
                deadline=clock_start + budget,
                env=env,
                config=config,
                data_dir=data_dir,
            )
            items = sized(time.monotonic() - clock_start)
        execute(
            items,
            work=work,
            concurrency=concurrency,
            deadline=clock_start + budget,
            clock_start=clock_start,
            env=env,
            config=config,
            data_dir=data_dir,
            min_train_s=sizing.get("min_train_s", MIN_TRAIN_S),
            outcomes=outcomes,
        )
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: packing what finished", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        sampler.stop()

    table = summary_table(outcomes)
    summary = dict(
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        device=f"{backend} ({kind})",
        dry_run=args.dry_run,
        interrupted=interrupted,
        budget_s=budget,
        wall_s=round(time.monotonic() - clock_start, 1),
        concurrency=concurrency,
        probe=measured_probe or history.get("probe"),
        utilization=utilisation_summary(work / "utilization.csv"),
        jobs={
            o.name: dict(
                command=o.command,
                time_limit_s=o.time_limit,
                started_s=o.started_s,
                ended_s=o.ended_s,
                returncode=o.returncode,
                stopped=o.stopped,
                steps_per_s=o.steps_per_s,
                train_wall_s=o.train_wall_s,
                overhead_s=o.overhead_s,
                records=len(o.records),
            )
            for o in outcomes
        },
        table=table,
    )
    archive = pack(work, outcomes, summary, out)
    print(table)
    print(f"{summary['wall_s']} s in all (budget {budget:g} s); archive: {archive}")
    return 130 if interrupted else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _install_wheels(work: Path) -> Path | None:
    """Installs the wheels that ``prepare`` put in .reproduce/wheels (no network), into a
    folder of this run's own; returns it, or None where there are none."""
    wheels = sorted((TRAVEL / "wheels").glob("*.whl"))
    if not wheels:
        return None
    site = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    pip += ["--no-compile", "--target", str(site), *map(str, wheels)]
    result = subprocess.run(pip, capture_output=True, text=True)
    if result.returncode:
        print(f"reproduce: the wheels did not install:\n{result.stderr}", file=sys.stderr)
        return None
    return site


def _imports(module: str, env: dict) -> bool:
    """Whether ``module`` imports in the jobs' environment (not only whether it is there:
    a wheel that travelled may not import beside the machine's own packages)."""
    command = [sys.executable, "-c", f"import {module}"]
    return subprocess.run(command, env=env, capture_output=True).returncode == 0


# The packages that jobs need beyond metajax's, fetched by `prepare` as wheels: the UEA
# sets come with aeon (TapNet), which the accelerator machine does not have.
TRAVELLING_WHEELS = ("aeon", "Deprecated")


def prepare(args) -> int:
    """Copies Omniglot's archives and split into benchmarks/.reproduce/, an ignored
    folder that travels with the tree, and downloads the wheels of
    :data:`TRAVELLING_WHEELS` (the versions installed here) beside them."""
    source = _data_dir(args.data_dir, travelled=False)
    if source is None:
        print("prepare: no omniglot/ found: give --data-dir", file=sys.stderr)
        return 2
    target = TRAVEL / "data" / "omniglot"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("images_background.zip", "images_evaluation.zip", "vinyals_splits"):
        path = source / "omniglot" / name
        copy = shutil.copytree if path.is_dir() else shutil.copy2
        if path.is_dir() and (target / name).exists():
            shutil.rmtree(target / name)
        copy(path, target / name)
    wheels = TRAVEL / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    for package in TRAVELLING_WHEELS:
        try:
            pinned = f"{package}=={importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            print(f"prepare: {package} is not installed here; its jobs will be left out")
            continue
        download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
        download += ["--only-binary=:all:", "-d", str(wheels), pinned]
        if subprocess.run(download).returncode:
            print(f"prepare: could not download {pinned}; its jobs will be left out")
    size = sum(p.stat().st_size for p in TRAVEL.rglob("*") if p.is_file())
    print(f"{TRAVEL} holds {size / 2**20:.1f} MiB: carry 'benchmarks/.reproduce' with the tree")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/reproduce.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("run", help="plan, run and pack the paper configurations")
    r.add_argument("--out", required=True, help="where the archive and summary.md go (2 files)")
    r.add_argument("--workdir", help="the jobs' folders (default: a new temporary folder)")
    r.add_argument(
        "--budget-s",
        type=_positive,
        help=f"wall-clock seconds in all ({DEFAULT_BUDGET_S:g}; a dry run: {DRY_BUDGET_S:g})",
    )
    r.add_argument(
        "--concurrency", type=_positive_int, help="processes at once (default: measured)"
    )
    r.add_argument(
        "--min-train-s",
        type=_positive,
        default=MIN_TRAIN_S,
        help=f"the least training seconds of a planned job ({MIN_TRAIN_S:g}); fewer fit "
        "when it is larger",
    )
    r.add_argument(
        "--probe", action="store_true", help="measure 1 against N processes even if on record"
    )
    r.add_argument(
        "--probe-s", type=float, default=PROBE_S, help="training seconds of each probe phase"
    )
    r.add_argument(
        "--data-dir", help="folder holding omniglot/ ($METAJAX_DATA_DIR, .reproduce/data)"
    )
    r.add_argument("--cpu", action="store_true", help="run even without an accelerator")
    r.add_argument(
        "--dry-run", action="store_true", help="tiny jobs on generated data, on any device"
    )
    u = commands.add_parser("unpack", help="an archive into benchmarks/results/ and RESULTS.md")
    u.add_argument("archive")
    u.add_argument("--results-dir", default=str(RESULTS))
    u.add_argument("--include-cpu", action="store_true", help="take CPU and dry-run records too")
    p = commands.add_parser("prepare", help="gather the data that travels to the accelerator")
    p.add_argument("--data-dir")
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.budget_s is None:
            args.budget_s = DRY_BUDGET_S if args.dry_run else DEFAULT_BUDGET_S
        return run(args)
    if args.command == "prepare":
        return prepare(args)
    written = unpack(args.archive, results_dir=Path(args.results_dir), include_cpu=args.include_cpu)
    for path in written:
        print(path)
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
