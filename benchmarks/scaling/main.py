"""Meta-steps per second against the number of devices, and the scaling efficiency.

The meta-batch's tasks are split across a ``task_mesh`` (data parallel over tasks,
parameters replicated; metajax.training.distributed). Each device count runs in its own
process: on CPU with ``--xla_force_host_platform_device_count``, on an accelerator
with its first n devices. Two ways to scale are reported:

- weak: every device keeps ``tasks_per_device`` tasks, the meta-batch grows with the
  devices; efficiency = steps/s(n) / steps/s(1) (1.0: n devices do n times the work
  in the same time).
- strong: a fixed ``meta_batch`` is split; efficiency = steps/s(n) / (n * steps/s(1)).

python benchmarks/scaling/main.py                      # CPU: 1, 2, 4 forced host devices
python benchmarks/scaling/main.py --config cpu16       # a many-core host: up to 8
python benchmarks/scaling/main.py --config gpu         # the accelerators there are

Forced host devices share the host's cores: on a 2-core machine four "devices" cannot
run four times the work, and the table says so. Timings need an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from metajax.results import load_config, publish  # noqa: E402

RESULTS = HERE.parent / "results"
NAMES = {"protonet": "ProtoNet", "maml": "MAML"}


def run_child(config: dict, devices: int) -> dict:
    env = dict(os.environ)
    if config["platform"] == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        flags = env.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    done = subprocess.run(
        [sys.executable, str(HERE / "train.py"), json.dumps(config), str(devices)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{devices} devices failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def efficiency(row: dict, base: dict) -> float:
    speedup = row["steps_per_s"] / base["steps_per_s"]
    return speedup if row["mode"] == "weak" else speedup / row["devices"]


def records(config: dict, runs: list[dict]) -> list[dict]:
    base = {(r["learner"], r["mode"]): r for r in runs[0]["rows"]}
    out = []
    for run in runs:
        for row in run["rows"]:
            n = row["devices"]
            out.append(
                {
                    "benchmark": "scaling",
                    "method": NAMES[row["learner"]],
                    "dataset": "omniglot-shaped",
                    "setting": f"{config['ways']}w{config['shots']}s, {row['mode']}, "
                    f"{n} device{'s' if n > 1 else ''}, {row['tasks']} tasks"
                    + (f", {config['label']}" if config.get("label") else ""),
                    "metric": "meta-steps/s",
                    "value": row["steps_per_s"],
                    "tasks_per_s": row["tasks_per_s"],
                    "efficiency": efficiency(row, base[(row["learner"], row["mode"])]),
                    "devices": n,
                    "mode": row["mode"],
                    "tasks": row["tasks"],
                    "compile_s": row["compile_s"],
                    "steps": config["steps"],
                    "platform": config["platform"],
                    "device": run["device"],
                    "versions": run["versions"],
                    "backend": run["backend"],
                }
            )
    return out


def table(rows: list[dict]) -> str:
    lines = [
        "| method | scaling | devices | tasks | meta-steps/s | tasks/s | efficiency | device |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['mode']} | {r['devices']} | {r['tasks']} | {r['value']:.3g} "
            f"| {r['tasks_per_s']:.3g} | {r['efficiency']:.2f} | {r['device']} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="default", help="a module in configs/")
    parser.add_argument("--devices", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed meta-steps")
    parser.add_argument("--learners", nargs="+", choices=sorted(NAMES), default=None)
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--dry-run", action="store_true", help="print, write nothing")
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    for key in ("devices", "steps", "learners"):
        if getattr(args, key) is not None:
            config[key] = tuple(getattr(args, key)) if key != "steps" else args.steps
    devices = sorted(config["devices"])
    if devices[0] != 1:
        raise SystemExit("--devices must include 1: efficiency is relative to one device")
    runs = []
    for n in devices:
        try:
            runs.append(run_child(config, n))
            # Partial results survive a run cut short by a time limit.
            print(json.dumps(runs[-1]["rows"]), flush=True)
        except RuntimeError as err:
            if "but this process sees" not in str(err):
                raise
            print(f"skipping {n} devices: only {len(runs) and runs[-1]['device']}", flush=True)
            break
    rows = records(config, runs)
    print(table(rows), flush=True)
    if not args.dry_run:
        markdown = HERE.parent / "RESULTS.md" if args.results_dir == str(RESULTS) else None
        publish(rows, args.results_dir, markdown)
    return rows


if __name__ == "__main__":
    main()
