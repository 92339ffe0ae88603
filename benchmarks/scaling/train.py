"""One device count's measurement, run in its own process (XLA fixes the device count at start).

``python train.py CONFIG_JSON DEVICES`` prints one JSON line: meta-steps per second
of each learner at the weak-scaling and the strong-scaling meta-batch, on a
``task_mesh(DEVICES)``, with the process's device and versions.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import numpy as np
import optax

import metajax as mj
from metajax.results import environment
from metajax.training.distributed import replicate, task_mesh


def make_learner(config: dict, name: str):
    if name == "protonet":
        return mj.protonet(mj.conv4(filters=config["filters"])), optax.adam(1e-3)
    if name == "maml":
        model = mj.conv4(filters=config["filters"], outputs=config["ways"])
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
    env = environment()
    return {
        "rows": rows,
        "device": env["device"],
        "versions": env["versions"],
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]), int(sys.argv[2]))), flush=True)
