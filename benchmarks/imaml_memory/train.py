"""Compiles one meta-step per (method, inner steps) and reads XLA's memory analysis."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import metajax as mj


def learner_for(method: str, steps: int, config: dict):
    model = mj.conv4(filters=config["filters"], blocks=config["blocks"], outputs=config["ways"])
    if method == "MAML":
        return mj.maml(
            model, inner_lr=config["maml_inner_lr"], inner_steps=steps, test_inner_steps=steps
        )
    return mj.imaml(
        model,
        inner_lr=config["imaml_inner_lr"],
        inner_steps=steps,
        proximal=config["proximal"],
        cg_steps=config["cg_steps"],
    )


def measure(method: str, steps: int, config: dict) -> dict:
    """Peak bytes of one meta-step: arguments + outputs + XLA's temporary buffers.

    The step donates its state, so arguments and outputs share buffers; counting
    both over-states the peak by the size of the state (a few MB), equally for all.
    """
    per_class = config["shots"] + config["queries"]
    pool = jnp.zeros((config["ways"] * 2, per_class, 28, 28, 1), jnp.float32)
    sampler = mj.pool_sampler(
        pool, ways=config["ways"], shots=config["shots"], queries=config["queries"]
    )
    learner = learner_for(method, steps, config)
    optimizer = optax.adam(1e-3)
    state = mj.init_state(learner, optimizer, sampler, jax.random.key(0))
    step = mj.make_train_step(learner, optimizer, sampler, tasks=config["tasks"])
    start = time.perf_counter()
    compiled = step.lower(state, sampler.data).compile()
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    peak = memory.temp_size_in_bytes + memory.argument_size_in_bytes + memory.output_size_in_bytes
    return dict(
        method=method,
        inner_steps=steps,
        peak_bytes=int(peak),
        temp_bytes=int(memory.temp_size_in_bytes),
        compile_s=round(seconds, 1),
    )


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method in ("MAML", "iMAML"):
        mine = [r for r in rows if r["method"] == method]
        ax.plot(
            [r["inner_steps"] for r in mine],
            [r["peak_bytes"] / 2**30 for r in mine],
            marker="o",
            label=method,
        )
    ax.set_xlabel("inner steps")
    ax.set_ylabel("peak memory of one meta-step (GiB)")
    ax.set_title("Conv-4, Omniglot 5w1s, meta-batch 32")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run(config: dict, *, results_dir=None):
    """Measures MAML and iMAML at every inner-step count of ``config``; yields the records
    once all are measured, and plots them into ``results_dir`` (when given)."""
    rows = []
    print(f"{'method':6} {'steps':>5} {'peak GiB':>9} {'x 1-step':>8} {'compile s':>9}")
    for method in ("MAML", "iMAML"):
        base = None
        for steps in config["inner_steps"]:
            row = measure(method, steps, config)
            base = base or row["peak_bytes"]
            row["ratio_to_1_step"] = round(row["peak_bytes"] / base, 3)
            rows.append(row)
            print(
                f"{method:6} {steps:5d} {row['peak_bytes'] / 2**30:9.3f} "
                f"{row['ratio_to_1_step']:8.2f} {row['compile_s']:9.1f}",
                flush=True,
            )
    if results_dir is not None:
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        plot(rows, Path(results_dir) / "imaml_memory.png")
    yield [
        dict(
            benchmark="imaml_memory",
            method=r["method"],
            dataset="omniglot-shaped",
            setting=f"5w1s, {r['inner_steps']:02d} steps",
            metric="peak_GiB",
            value=r["peak_bytes"] / 2**30,
            paper=None,
            tasks=config["tasks"],
            ratio_to_1_step=r["ratio_to_1_step"],
            compile_s=r["compile_s"],
            measured="XLA memory_analysis of the compiled meta-step",
        )
        for r in rows
    ]
