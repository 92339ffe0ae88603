"""Trains and evaluates Relation Networks on Omniglot; returns result records."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj
from metajax.learners.metric.relation import relation_network

# Sung et al. 2018, Table 1 (Omniglot, Vinyals split), accuracy.
PAPER = {"5w1s": 0.996, "5w5s": 0.998, "20w1s": 0.976, "20w5s": 0.991}


def train_and_evaluate(config: dict, setting: str, *, data_dir=None, workdir=None, progress=True):
    spec = config["settings"][setting]
    ways, shots = spec["ways"], spec["shots"]
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    train_pool = ds.pool("train")
    if config["trainval"]:
        # The papers' final models train on the 1200 train+val characters (4800 classes).
        train_pool = np.concatenate([train_pool, ds.pool("val")])
    sampler = mj.pool_sampler(train_pool, ways=ways, shots=shots, queries=spec["queries"])
    schedule = optax.exponential_decay(
        config["learning_rate"], spec["decay_every"], 0.5, staircase=True
    )
    learner = relation_network()  # the paper's Omniglot f and g
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optax.adam(schedule),
        steps=spec["steps"],
        key=key,
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
        key=jax.random.fold_in(key, 1000 + ways),
        episodes=spec["eval_episodes"],
    )
    return dict(
        benchmark="relation_omniglot",
        method="RelationNet",
        dataset="omniglot-vinyals",
        setting=setting + (f", {config['tag']}" if config["tag"] else ""),
        metric="accuracy",
        transductive=mj.is_transductive(learner, state.params, test, key=key),
        value=result.mean["accuracy"],
        ci95=result.ci95["accuracy"],
        paper=PAPER[setting],
        steps=int(state.step),
        scheduled_steps=spec["steps"],
        decay_every=spec["decay_every"],
        learning_rate=config["learning_rate"],
        time_limit_s=config["time_limit"],
        train_setting=f"{ways}w{shots}s{spec['queries']}q",
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
