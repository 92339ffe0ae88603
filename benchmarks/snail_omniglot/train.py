"""Trains and evaluates SNAIL on Omniglot; returns one result record per setting."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj
from metajax.learners.model.snail import snail

# Mishra et al. 2018, Table 1 (Omniglot, Vinyals split), accuracy.
PAPER = {"5w1s": 0.9907, "5w5s": 0.9978, "20w1s": 0.9764, "20w5s": 0.9936}


def train_and_evaluate(config: dict, setting: str, *, data_dir=None, workdir=None, progress=True):
    spec = config["settings"][setting]
    ways, shots = spec["ways"], spec["shots"]
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    train_pool = ds.pool("train")
    if config["trainval"]:
        train_pool = np.concatenate([train_pool, ds.pool("val")])
    sampler = mj.pool_sampler(train_pool, ways=ways, shots=shots, queries=spec["queries"])
    learner = snail(ways=ways, shots=shots)  # the paper's Omniglot embedding and network
    key = jax.random.fold_in(jax.random.key(config["seed"]), 100 * ways + shots)
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optax.adam(config["learning_rate"]),
        steps=spec["steps"],
        key=key,
        tasks=spec["tasks"],
        metrics_path=None if workdir is None else f"{workdir}/metrics_{setting}.jsonl",
        log_every=config["log_every"],
        progress=progress,
        time_limit=config["time_limit"],
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    test = mj.pool_sampler(ds.pool("test"), ways=ways, shots=shots, queries=spec["test_queries"])
    result = mj.evaluate(
        learner,
        state.params,
        test,
        key=jax.random.fold_in(key, 1000),
        episodes=spec["eval_episodes"],
        batch=config["eval_batch"],
    )
    return dict(
        benchmark="snail_omniglot",
        method="SNAIL",
        dataset="omniglot-vinyals",
        setting=setting,
        metric="accuracy",
        transductive=mj.is_transductive(learner, state.params, test, key=key),
        value=result.mean["accuracy"],
        ci95=result.ci95["accuracy"],
        paper=PAPER[setting],
        steps=int(state.step),  # steps actually run: time_limit may stop early
        tasks_per_step=spec["tasks"],
        train_setting=f"{ways}w{shots}s{spec['queries']}q",
        learning_rate=config["learning_rate"],
        time_limit_s=config["time_limit"],
        test_queries=spec["test_queries"],
        test_episodes=spec["eval_episodes"],
        wall_s=round(wall, 1),
        final_train_loss=history[-1]["loss"] if history else None,
        final_train_accuracy=history[-1]["accuracy"] if history else None,
    )


def run(config: dict, *, settings=None, data_dir=None, workdir=None, progress=True):
    """Every setting of ``config`` (or ``settings``); yields each setting's record."""
    for setting in settings or config["settings"]:
        yield [
            train_and_evaluate(
                config, setting, data_dir=data_dir, workdir=workdir, progress=progress
            )
        ]
