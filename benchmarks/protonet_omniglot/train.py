"""Trains and evaluates Prototypical Networks on Omniglot; returns result records."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj

# Snell et al. 2017, Table 1 (Omniglot, Vinyals split), accuracy.
PAPER = {(5, 1): 0.988, (5, 5): 0.997, (20, 1): 0.960, (20, 5): 0.989}


def train_and_evaluate(config: dict, shots: int, *, data_dir=None, workdir=None, progress=True):
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    train_pool = ds.pool("train")
    if config["trainval"]:
        # The papers' final models train on the 1200 train+val characters (4800 classes).
        train_pool = np.concatenate([train_pool, ds.pool("val")])
    sampler = mj.pool_sampler(
        train_pool, ways=config["train_ways"], shots=shots, queries=config["queries"]
    )
    schedule = optax.exponential_decay(
        config["learning_rate"], config["decay_every"][shots], 0.5, staircase=True
    )
    learner = mj.protonet()
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optax.adam(schedule),
        steps=config["steps"][shots],
        key=key,
        metrics_path=None if workdir is None else f"{workdir}/metrics_{shots}shot.jsonl",
        log_every=config["log_every"],
        time_limit=config["time_limit"],
        progress=progress,
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    records = []
    for ways in config["test_ways"]:
        test = mj.pool_sampler(
            ds.pool("test"), ways=ways, shots=shots, queries=config["test_queries"]
        )
        result = mj.evaluate(
            learner,
            state.params,
            test,
            key=jax.random.fold_in(key, 1000 + ways),
            episodes=config["eval_episodes"],
        )
        records.append(
            dict(
                benchmark="protonet_omniglot",
                method="ProtoNet",
                dataset="omniglot-vinyals",
                setting=f"{ways}w{shots}s",
                metric="accuracy",
                transductive=mj.is_transductive(learner, state.params, test, key=key),
                value=result.mean["accuracy"],
                ci95=result.ci95["accuracy"],
                paper=PAPER[(ways, shots)],
                steps=int(state.step),
                scheduled_steps=config["steps"][shots],
                time_limit_s=config["time_limit"],
                train_setting=f"{config['train_ways']}w{shots}s{config['queries']}q",
                test_episodes=config["eval_episodes"],
                wall_s=round(wall, 1),
                final_train_loss=history[-1]["loss"] if history else None,
            )
        )
    return records


def run(config: dict, *, shots=None, data_dir=None, workdir=None, progress=True):
    """The 1-shot and 5-shot models (or ``shots``); yields each model's records."""
    for k in shots or (1, 5):
        yield train_and_evaluate(config, k, data_dir=data_dir, workdir=workdir, progress=progress)
