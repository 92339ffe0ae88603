"""Compiles one meta-step per (method, inner steps) and reads XLA's memory analysis."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import optax

import metajax as mj


def learner_for(method: str, steps: int, config: dict):
    model = mj.conv4(filters=config["filters"], outputs=config["ways"])
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
