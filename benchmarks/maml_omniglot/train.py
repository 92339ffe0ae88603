"""Trains MAML-family learners on Omniglot and evaluates them; returns result records."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj

# Finn et al. 2017 Table 1 (MAML, first-order MAML); Rajeswaran et al. 2019 Table 2 (iMAML-HF).
PAPER = {
    ("MAML", 5): 0.987,
    ("MAML", 20): 0.958,
    ("FOMAML", 5): 0.983,
    ("FOMAML", 20): 0.894,
    ("iMAML", 5): 0.9916,
    ("iMAML", 20): 0.9446,
}


def learner_for(method: str, ways: int, config: dict):
    model = mj.conv4(outputs=ways, convolution=config["convolution"])
    if method == "iMAML":
        return mj.imaml(model, **config["imaml"][ways])
    return mj.maml(model, first_order=method == "FOMAML", **config["maml"][ways])


def train_and_evaluate(
    config: dict, method: str, ways: int, *, data_dir=None, workdir=None, progress=True
):
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    pool = ds.pool("train")
    if config["trainval"]:
        pool = np.concatenate([pool, ds.pool("val")])
    shots, queries = config["shots"], config["queries"]
    train = mj.pool_sampler(pool, ways=ways, shots=shots, queries=queries)
    test = mj.pool_sampler(ds.pool("test"), ways=ways, shots=shots, queries=queries)
    learner = learner_for(method, ways, config)
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        train,
        optax.adam(config["learning_rate"]),
        steps=config["steps"][ways],
        key=key,
        tasks=config["tasks"][ways],
        log_every=config["log_every"],
        progress=progress,
        metrics_path=None if workdir is None else f"{workdir}/{method}_{ways}w.jsonl",
        time_limit=config.get("time_limit"),
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    result = mj.evaluate(
        learner,
        state.params,
        test,
        key=jax.random.fold_in(key, ways),
        episodes=config["eval_episodes"],
        batch=10,
    )
    return dict(
        benchmark="maml_omniglot",
        method=method,
        dataset="omniglot-vinyals",
        setting=f"{ways}w{shots}s",
        metric="accuracy",
        value=result.mean["accuracy"],
        ci95=result.ci95["accuracy"],
        paper=PAPER[(method, ways)],
        steps=int(state.step),
        scheduled_steps=config["steps"][ways],
        time_limit_s=config.get("time_limit"),
        tasks=config["tasks"][ways],
        test_episodes=config["eval_episodes"],
        wall_s=round(wall, 1),
        final_train_loss=history[-1]["loss"] if history else None,
        final_cg_residual=history[-1].get("cg_residual") if history else None,
    )


def run(config: dict, *, data_dir=None, workdir=None, progress=True):
    """Every ways and method of ``config``; yields each run's record as the run ends."""
    for ways in config["ways"]:
        for method in config["methods"]:
            yield [
                train_and_evaluate(
                    config, method, ways, data_dir=data_dir, workdir=workdir, progress=progress
                )
            ]
