"""Seconds per meta-step: metajax's MAML and iMAML against learn2learn 0.2.0's MAML.

The same workload on both sides (configs/default.py): Omniglot-shaped random inputs,
5-way 1-shot, 15 queries per class, meta-batch 32, Conv-4, second-order MAML with
inner rate 0.4 and 1 or 5 inner steps, Adam 1e-3; iMAML (lambda 2, 5 CG steps) against
metajax's unrolled MAML with as many inner steps. Each workload runs in its own process
(so that its peak RSS is its own), the workloads interleaved, ``--repetitions`` times.

bash benchmarks/maml_speed/setup_env.sh     # once: CPU torch 2.13.0 + learn2learn 0.2.0
python benchmarks/maml_speed/main.py        # 2 warm-up + 20 timed steps, 3 repetitions
python benchmarks/maml_speed/main.py --steps 3 --repetitions 1 --dry-run   # a quick look
python benchmarks/maml_speed/main.py --methods maml --conv im2col --dry-run  # an alternative

Timings need an otherwise idle machine: with the cores shared, torch's OpenMP threads
wait on each other and the numbers mean little (README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import train  # noqa: E402

from metajax.results import load_config, publish  # noqa: E402

RESULTS = HERE.parent / "results"
NAMES = {"maml": "MAML (metajax)", "imaml": "iMAML (metajax)", "learn2learn": "MAML (learn2learn)"}
# What each method is compared with: learn2learn for MAML, metajax's own MAML for iMAML.
BASELINE = {"maml": "learn2learn", "imaml": "maml"}


def setting(config: dict, inner_steps: int) -> str:
    steps = f"{inner_steps} step{'s' if inner_steps != 1 else ''}"
    return f"{config['ways']}w{config['shots']}s, {steps}"


def method_name(config: dict, method: str) -> str:
    """The record's method; metajax variants other than the default are named in it."""
    name = NAMES[method]
    if method == "learn2learn":
        return name
    tags = []
    if config.get("conv", "conv") != "conv":
        tags.append(config["conv"])
    if config.get("task_map", "vmap") != "vmap":
        tags.append(f"lax.map batch {config['map_batch_size']}")
    return name if not tags else f"{name[:-1]}, {', '.join(tags)})"


def measure(config: dict, method: str, inner_steps: int, *, venv=None, isolate=True) -> dict:
    if method == "learn2learn":
        return train.measure_l2l(config, inner_steps, venv=venv)
    if isolate:
        return train.measure_metajax_isolated(config, inner_steps, method)
    return train.measure_metajax(config, inner_steps, method)


def summarise(runs: list[dict]) -> dict:
    """Medians over repetitions of the per-repetition medians (and of compile times)."""

    def median(key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    return dict(
        value=median("seconds_per_step"),
        per_repetition=[round(r["seconds_per_step"], 4) for r in runs],
        compile_s=median("compile_s"),
        first_step_s=median("first_step_s"),
        peak_rss_gb=max(r["peak_rss_gb"] for r in runs),
        peak_device_gb=max((r.get("peak_device_gb") or 0.0 for r in runs), default=0.0) or None,
        framework_device=runs[-1].get("device"),
        gflop_per_step=median("gflop_per_step"),
    )


def _fmt(value, spec=".3g"):
    return "–" if value is None else format(value, spec)


def table(config: dict, summary: dict) -> str:
    # On an accelerator the memory that matters is the device's, not the host process's.
    memory = "peak_device_gb" if any(r.get("peak_device_gb") for r in summary.values()) else None
    memory = memory or "peak_rss_gb"
    label = "peak device GB" if memory == "peak_device_gb" else "peak RSS GB"
    lines = [
        "| workload | metajax s/step | baseline | baseline s/step | ratio (metajax / baseline) "
        f"| compile s | {label} (metajax / baseline) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (method, inner_steps), row in summary.items():
        if method == "learn2learn":
            continue
        base = summary.get((BASELINE[method], inner_steps))
        ratio = None if base is None else row["value"] / base["value"]
        lines.append(
            f"| {method_name(config, method)}, {setting(config, inner_steps)} "
            f"| {_fmt(row['value'])} | {NAMES[BASELINE[method]]} "
            f"| {_fmt(base and base['value'])} | {_fmt(ratio, '.2f')} "
            f"| {_fmt(row['compile_s'], '.1f')} "
            f"| {_fmt(row[memory], '.2f')} / {_fmt(base and base[memory], '.2f')} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", default="default", help="a module in configs/")
    parser.add_argument("--inner-steps", type=int, nargs="+", default=None, help="default: 1 5")
    parser.add_argument(
        "--methods", nargs="+", choices=tuple(NAMES), default=None, help="default: all three"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed meta-steps (20)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed meta-steps first (2)")
    parser.add_argument("--repetitions", type=int, default=None, help="interleaved rounds (3)")
    parser.add_argument("--tasks", type=int, default=None, help="meta-batch (32)")
    parser.add_argument("--conv", choices=("conv", "im2col"), default=None)
    parser.add_argument("--task-map", choices=("vmap", "map"), default=None)
    parser.add_argument("--map-batch-size", type=int, default=None)
    parser.add_argument("--venv", default=None, help="the learn2learn venv (.venv-l2l)")
    parser.add_argument(
        "--torch-device",
        choices=("cpu", "cuda"),
        default=None,
        help="learn2learn's device (default: cuda when JAX runs on a GPU, else cpu)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="measure metajax in this process (shared RSS)"
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = parser.parse_args(argv)

    config = load_config(HERE, args.config)
    keys = ("steps", "warmup", "repetitions", "tasks", "conv", "task_map", "map_batch_size")
    for key in (*keys, "torch_device"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    methods = args.methods or list(config["methods"])
    inner_steps = args.inner_steps or list(config["inner_steps"])
    if "learn2learn" in methods:
        train.l2l_command(config, 1, venv=args.venv)  # fails early without the venv

    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before starting; timings want an idle machine")
    runs = defaultdict(list)
    for repetition in range(config["repetitions"]):
        for steps in inner_steps:
            for method in methods:
                result = measure(config, method, steps, venv=args.venv, isolate=not args.in_process)
                runs[method, steps].append(result)
                print(
                    f"[{repetition + 1}/{config['repetitions']}] {method_name(config, method)}, "
                    f"{setting(config, steps)}: {result['seconds_per_step']:.3f} s/step "
                    f"(first step {result['first_step_s']:.1f} s, compile "
                    f"{_fmt(result.get('compile_s'), '.1f')} s, peak RSS "
                    f"{result['peak_rss_gb']:.2f} GB)",
                    flush=True,
                )
    summary = {key: summarise(value) for key, value in runs.items()}
    print(table(config, summary), flush=True)

    records = []
    for (method, steps), row in summary.items():
        base = summary.get((BASELINE.get(method), steps))
        last = runs[method, steps][-1]
        records.append(
            dict(
                benchmark="maml_speed",
                method=method_name(config, method),
                dataset="omniglot-shaped",
                setting=setting(config, steps),
                metric="seconds_per_step",
                paper=None,
                **row,
                baseline=NAMES[BASELINE[method]] if method in BASELINE else None,
                ratio_to_baseline=None if base is None else row["value"] / base["value"],
                repetitions=config["repetitions"],
                steps=config["steps"],
                warmup=config["warmup"],
                tasks=config["tasks"],
                queries=config["queries"],
                filters=config["filters"],
                blocks=config["blocks"],
                inner_steps=steps,
                inner_lr=config["inner_lr"],
                conv=None if method == "learn2learn" else config["conv"],
                task_map=None if method == "learn2learn" else config["task_map"],
                torch_threads=config["torch_threads"] if method == "learn2learn" else None,
                torch_device=train.torch_device(config) if method == "learn2learn" else None,
                final_loss=last.get("final_loss"),
                framework_versions=last.get("versions"),
                config=args.config,
                load_average_at_start=round(load, 2),
            )
        )
    if args.dry_run:
        return records
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    publish(records, args.results_dir, HERE.parent / "RESULTS.md" if default_dir else None)
    return records


if __name__ == "__main__":
    main()
