"""Trains and evaluates Meta Networks on Omniglot; returns result records."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj
from metajax.learners.model.metanet import meta_networks

# Munkhdalai & Yu 2017, Table 1 (Omniglot, Vinyals split), one-shot accuracy.
PAPER = {"5w1s": 0.9895, "20w1s": 0.9700}


def train_and_evaluate(config: dict, setting: str, *, data_dir=None, workdir=None, progress=True):
    spec = config["settings"][setting]
    ways, shots = spec["ways"], spec["shots"]
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    train_pool = ds.pool("train")
    if config["trainval"]:
        # The papers' final models train on the 1200 train+val characters (4800 classes).
        train_pool = np.concatenate([train_pool, ds.pool("val")])
    sampler = mj.pool_sampler(train_pool, ways=ways, shots=shots, queries=spec["queries"])
    learner = meta_networks(ways=ways, **config["model"])
    # The released code: Adam at 1e-3, gradients clipped to a global norm of 10.
    optimizer = optax.chain(
        optax.clip_by_global_norm(config["clip_norm"]), optax.adam(config["learning_rate"])
    )
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optimizer,
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
        batch=spec["eval_batch"],
    )
    return dict(
        benchmark="metanet_omniglot",
        method="MetaNet" + ("" if config["model"]["filters"] == 64 else "-32filters"),
        dataset="omniglot-vinyals",
        setting=setting,
        metric="accuracy",
        transductive=mj.is_transductive(learner, state.params, test, key=key),
        value=result.mean["accuracy"],
        ci95=result.ci95["accuracy"],
        paper=PAPER[setting],
        steps=int(state.step),
        time_limit_s=config["time_limit"],
        model=dict(config["model"]),
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
