"""Seconds per meta-step of metajax against plain PyTorch: ProtoNet and the LSTM baseline.

:func:`measure_metajax` times metajax's jitted meta-step (:func:`metajax.make_train_step`)
in this process; :func:`measure_torch` runs ``torch_protonet.py`` or ``torch_lstm.py`` in
the PyTorch venv that ``maml_speed/setup_env.sh`` makes. ``python train.py --workload
protonet-5`` prints one metajax measurement as JSON, which is how :func:`run` isolates
each measurement in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np
import optax

import metajax as mj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.speed import (  # noqa: E402
    load_warning,
    matmul_peak_gflops,
    peak_rss_gb,
    run_json,
    summarise,
    torch_python,
)

HERE = Path(__file__).resolve().parent
NAMES = {"protonet": "ProtoNet", "lstm": "LSTM baseline"}


def parse(workload: str) -> tuple[str, int | None]:
    """``"protonet-5"`` -> ``("protonet", 5)``; ``"lstm"`` -> ``("lstm", None)``."""
    kind, _, shots = workload.partition("-")
    if kind not in NAMES or (kind == "protonet") != bool(shots):
        raise ValueError(f"workload must be protonet-<shots> or lstm, got {workload!r}")
    return kind, int(shots) if shots else None


def setting(config: dict, workload: str) -> str:
    kind, shots = parse(workload)
    if kind == "protonet":
        c = config["protonet"]
        return f"{c['ways']}w{shots}s{c['queries']}q, 1 episode"
    c = config["lstm"]
    return f"{c['tasks']} sequences of {c['ways'] * c['instances']} steps, {c['hidden']} units"


def lstm_gflop(config: dict) -> float:
    """Multiply-adds of the LSTM and its head, x2 for FLOPs, x3 for forward and backward.

    XLA counts a loop's body once, so the count is made by hand."""
    c = config["lstm"]
    inputs = c["image_size"] ** 2 + c["ways"]
    per_step = 4 * c["hidden"] * (inputs + c["hidden"]) + c["hidden"] * c["ways"]
    return 3 * 2 * per_step * c["ways"] * c["instances"] * c["tasks"] / 1e9


def build(config: dict, workload: str):
    kind, shots = parse(workload)
    rng = np.random.default_rng(config["seed"])
    optimizer = optax.adam(config["learning_rate"])
    if kind == "protonet":
        c = config["protonet"]
        pool = rng.random((*c["pool"], *c["image"]), dtype=np.float32)
        sampler = mj.pool_sampler(pool, ways=c["ways"], shots=shots, queries=c["queries"])
        learner = mj.protonet(mj.conv4(filters=c["filters"], blocks=c["blocks"]))
        return learner, optimizer, sampler, 1
    c = config["lstm"]
    pool = rng.random((*c["pool"], c["image_size"], c["image_size"], 1), dtype=np.float32)
    sampler = mj.pool_sampler(pool, ways=c["ways"], shots=1, queries=c["instances"] - 1)
    learner = mj.lstm_baseline(ways=c["ways"], instances=c["instances"], hidden=c["hidden"])
    optimizer = optax.chain(optax.clip_by_global_norm(config["clip_norm"]), optimizer)
    return learner, optimizer, sampler, c["tasks"]


def measure_metajax(config: dict, workload: str) -> dict:
    """Times metajax's jitted meta-step: compiled ahead of time (``compile_s``), then
    ``warmup`` untimed and ``steps`` timed calls, each waited for."""
    learner, optimizer, sampler, tasks = build(config, workload)
    state = mj.init_state(learner, optimizer, sampler, jax.random.key(config["seed"]))
    jax.block_until_ready(state)
    start = time.perf_counter()
    step = mj.make_train_step(learner, optimizer, sampler, tasks=tasks)
    compiled = step.lower(state, sampler.data).compile()
    compile_s = time.perf_counter() - start
    if parse(workload)[0] == "lstm":
        gflop = lstm_gflop(config)
    else:
        gflop = compiled.cost_analysis()["flops"] / 1e9
    times = []
    for _ in range(config["warmup"] + config["steps"]):
        start = time.perf_counter()
        state, metrics = compiled(state, sampler.data)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
    return dict(
        framework="metajax",
        seconds_per_step=statistics.median(times[config["warmup"] :]),
        step_times=[round(t, 4) for t in times[config["warmup"] :]],
        compile_s=compile_s,
        first_step_s=times[0],
        gflop_per_step=gflop,
        peak_rss_gb=peak_rss_gb(),
        final_loss=float(metrics["loss"]),
        versions=dict(jax=jax.__version__, python=sys.version.split()[0]),
    )


def torch_command(config: dict, workload: str, *, venv=None) -> list[str]:
    kind, shots = parse(workload)
    common = [
        f"--learning-rate={config['learning_rate']}",
        f"--steps={config['steps']}",
        f"--warmup={config['warmup']}",
        f"--threads={config['torch_threads']}",
        f"--seed={config['seed']}",
    ]
    python = str(torch_python(venv))
    if kind == "protonet":
        c = config["protonet"]
        return [
            python,
            str(HERE / "torch_protonet.py"),
            f"--ways={c['ways']}",
            f"--shots={shots}",
            f"--queries={c['queries']}",
            f"--filters={c['filters']}",
            f"--blocks={c['blocks']}",
            "--image",
            *map(str, c["image"]),
            "--pool",
            *map(str, c["pool"]),
            *common,
        ]
    c = config["lstm"]
    return [
        python,
        str(HERE / "torch_lstm.py"),
        f"--ways={c['ways']}",
        f"--instances={c['instances']}",
        f"--hidden={c['hidden']}",
        f"--image-size={c['image_size']}",
        f"--tasks={c['tasks']}",
        *common,
    ]


def measure(config: dict, workload: str, side: str, *, venv=None) -> dict:
    if side == "pytorch":
        return run_json(torch_command(config, workload, venv=venv))
    return run_json(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            f"--workload={workload}",
            f"--config-json={json.dumps(config)}",
        ]
    )


def _fmt(value, spec=".3g"):
    return "–" if value is None else format(value, spec)


def run(config: dict, *, venv=None):
    """Times every workload on both sides, interleaved, ``repetitions`` times; yields
    one record per workload with both medians and their ratio."""
    for workload in config["workloads"]:
        parse(workload)
    torch_python(venv)  # fails early without the venv
    load = load_warning()
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak (XLA, 4096^2): {peak:.0f} GFLOP/s", flush=True)
    runs = defaultdict(list)
    for repetition in range(config["repetitions"]):
        for workload in config["workloads"]:
            for side in ("metajax", "pytorch"):
                result = measure(config, workload, side, venv=venv)
                runs[workload, side].append(result)
                print(
                    f"[{repetition + 1}/{config['repetitions']}] {workload} {side}: "
                    f"{result['seconds_per_step']:.4f} s/step (first step "
                    f"{result['first_step_s']:.2f} s, compile "
                    f"{_fmt(result.get('compile_s'), '.1f')} s, peak RSS "
                    f"{result['peak_rss_gb']:.2f} GB)",
                    flush=True,
                )
    lines = [
        "| workload | metajax s/step | PyTorch s/step | ratio (metajax / PyTorch) | compile s "
        "| peak RSS GB (metajax / PyTorch) | metajax GFLOP/s (% of matmul peak) |",
        "|---|---|---|---|---|---|---|",
    ]
    records = []
    for workload in config["workloads"]:
        ours, theirs = summarise(runs[workload, "metajax"]), summarise(runs[workload, "pytorch"])
        ratio = ours["value"] / theirs["value"]
        rate = ours["gflop_per_step"] / ours["value"] if ours["gflop_per_step"] else None
        kind, _ = parse(workload)
        lines.append(
            f"| {NAMES[kind]}, {setting(config, workload)} | {ours['value']:.4f} "
            f"| {theirs['value']:.4f} | {ratio:.2f} | {_fmt(ours['compile_s'], '.1f')} "
            f"| {ours['peak_rss_gb']:.2f} / {theirs['peak_rss_gb']:.2f} "
            f"| {_fmt(rate, '.0f')} ({_fmt(rate and 100 * rate / peak, '.0f')}%) |"
        )
        last = runs[workload, "pytorch"][-1]
        records.append(
            dict(
                benchmark="torch_speed",
                method=f"{NAMES[kind]} (metajax)",
                dataset="omniglot-shaped",
                setting=setting(config, workload),
                metric="seconds_per_step",
                paper=None,
                **ours,
                baseline=f"{NAMES[kind]} (plain PyTorch)",
                baseline_value=theirs["value"],
                baseline_per_repetition=theirs["per_repetition"],
                baseline_peak_rss_gb=theirs["peak_rss_gb"],
                baseline_first_step_s=theirs["first_step_s"],
                ratio_to_baseline=ratio,
                gflop_per_s=rate,
                matmul_peak_gflop_per_s=peak,
                repetitions=config["repetitions"],
                steps=config["steps"],
                warmup=config["warmup"],
                torch_threads=config["torch_threads"],
                baseline_versions=last.get("versions"),
                framework_versions=runs[workload, "metajax"][-1].get("versions"),
                load_average_at_start=round(load, 2),
            )
        )
    print("\n".join(lines), flush=True)
    yield records


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prints one metajax measurement as JSON.")
    parser.add_argument("--workload", default="protonet-5")
    parser.add_argument("--config-json", default=None, help="the config (default: default.py)")
    args = parser.parse_args(argv)
    if args.config_json is None:
        sys.path.insert(0, str(HERE))
        from configs import default

        config = default.get_config()
    else:
        config = json.loads(args.config_json)
    print(json.dumps(measure_metajax(config, args.workload)), flush=True)


if __name__ == "__main__":
    main()
