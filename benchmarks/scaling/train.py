"""Meta-steps per second against the number of devices, one process per device count.

:func:`run` starts, for every device count, ``python train.py CONFIG_JSON DEVICES``
(XLA fixes the device count when a process starts), which prints one JSON line:
meta-steps per second of each learner at the weak-scaling and the strong-scaling
meta-batch, on a ``task_mesh(DEVICES)``, with the process's device and versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax

import metajax as mj
from metajax.training.distributed import replicate, task_mesh

HERE = Path(__file__).resolve().parent


def make_learner(config: dict, name: str):
    if name == "protonet":
        backbone = mj.conv4(filters=config["filters"], blocks=config["blocks"])
        return mj.protonet(backbone), optax.adam(1e-3)
    if name == "maml":
        model = mj.conv4(filters=config["filters"], blocks=config["blocks"], outputs=config["ways"])
        learner = mj.maml(model, inner_lr=config["inner_lr"], inner_steps=config["inner_steps"])
        return learner, optax.adam(1e-3)
    raise ValueError(f"learner must be protonet or maml, got {name!r}")


def sampler_for(config: dict):
    classes, examples = config["pool"]
    side = config["image"]
    pool = np.random.default_rng(0).random((classes, examples, side, side, 1), np.float32)
    return mj.pool_sampler(
        pool, ways=config["ways"], shots=config["shots"], queries=config["queries"]
    )


def measure(config: dict, name: str, devices: int, tasks: int) -> dict:
    """Seconds for ``config['steps']`` meta-steps of ``tasks`` tasks on ``devices`` devices."""
    learner, optimizer = make_learner(config, name)
    sampler = sampler_for(config)
    mesh = task_mesh(devices)
    state = mj.init_state(learner, optimizer, sampler, jax.random.key(0))
    state, data = replicate((state, sampler.data), mesh)
    step = mj.make_train_step(learner, optimizer, sampler, tasks=tasks, mesh=mesh)
    start = time.perf_counter()
    compiled = step.lower(state, data).compile()
    compile_s = time.perf_counter() - start
    for _ in range(config["warmup"]):
        state, metrics = compiled(state, data)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(config["steps"]):
        state, metrics = compiled(state, data)
    jax.block_until_ready((state, metrics))
    seconds = time.perf_counter() - start
    return {
        "learner": name,
        "devices": devices,
        "tasks": tasks,
        "steps_per_s": config["steps"] / seconds,
        "tasks_per_s": config["steps"] * tasks / seconds,
        "compile_s": round(compile_s, 2),
        "loss": float(metrics["loss"]),
    }


def main(config: dict, devices: int) -> dict:
    available = len(jax.devices())
    if devices > available:
        raise ValueError(f"devices={devices} but this process sees {available}")
    rows = []
    for name in config["learners"]:
        for mode, tasks in (
            ("weak", config["tasks_per_device"] * devices),
            ("strong", config["meta_batch"]),
        ):
            rows.append({**measure(config, name, devices, tasks), "mode": mode})
    from harness.results import environment  # the child finds benchmarks/ on PYTHONPATH

    env = environment()
    return {
        "rows": rows,
        "device": env["device"],
        "versions": env["versions"],
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
    }


NAMES = {"protonet": "ProtoNet", "maml": "MAML"}


def run_child(config: dict, devices: int) -> dict:
    env = dict(os.environ)
    # The child imports the harness's record helpers from benchmarks/, as main.py does.
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
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


def run(config: dict):
    """Measures every device count of ``config`` in its own process (stopping at the
    first this machine lacks); yields the records of all of them with their efficiency."""
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
    yield rows


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]), int(sys.argv[2]))), flush=True)
