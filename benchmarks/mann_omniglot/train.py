"""Trains MANN or the LSTM baseline on Omniglot sequences; returns per-instance result records."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj
from metajax.datasets import load_omniglot
from metajax.learners.model.mann import lstm_baseline, mann
from metajax.training.trainer import mean_ci95

# Santoro et al. 2016, Table 1: 5-way Omniglot, accuracy at the k-th instance of a class.
PAPER = {
    "MANN": {1: 0.364, 2: 0.828, 3: 0.910, 4: 0.926, 5: 0.949, 10: 0.981},
    "LSTM": {1: 0.244, 2: 0.495, 3: 0.553, 4: 0.610, 5: 0.636, 10: 0.625},
}
REPORTED = (1, 2, 3, 4, 5, 10)


def make_learner(method: str, config: dict):
    ways, instances = config["ways"], config["instances"]
    if method == "MANN":
        return mann(ways=ways, instances=instances, **config["mann"])
    if method == "LSTM":
        return lstm_baseline(ways=ways, instances=instances, **config["lstm"])
    raise ValueError(f"method must be MANN or LSTM, got {method!r}")


def make_optimizer(config: dict):
    if config["optimizer"] == "rmsprop":
        inner = optax.rmsprop(config["learning_rate"], decay=config["rmsprop_decay"])
    elif config["optimizer"] == "adam":
        inner = optax.adam(config["learning_rate"])
    else:
        raise ValueError(f"optimizer must be rmsprop or adam, got {config['optimizer']!r}")
    return optax.chain(optax.clip_by_global_norm(config["clip_norm"]), inner)


def per_instance_accuracy(learner, params, sampler, *, key, episodes: int, batch: int = 100):
    """Per-episode ``instance_k`` accuracies ``{k: [episodes]}`` from the learner's loss metrics.

    ``mj.evaluate`` scores ``predict`` (queries after the support set); the paper's
    numbers are accuracies at each presentation within the sequence, which are the
    loss's metrics on test episodes.
    """

    batch = min(batch, episodes)

    @jax.jit
    def chunk(params, key):
        keys = jax.random.split(key, batch)
        tasks = jax.vmap(sampler.sample, in_axes=(0, None))(keys, sampler.data)
        shuffle = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
        return jax.vmap(learner.loss, in_axes=(None, 0, 0))(params, tasks, shuffle)[1]

    parts = [jax.device_get(chunk(params, k)) for k in jax.random.split(key, -(-episodes // batch))]
    return {
        name: np.concatenate([p[name] for p in parts])[:episodes]
        for name in parts[0]
        if name.startswith("instance_") or name == "accuracy"
    }


def train_and_evaluate(config: dict, method: str, *, data_dir=None, workdir=None, progress=True):
    ways, instances = config["ways"], config["instances"]
    ds = load_omniglot(data_dir, protocol="vinyals", image_size=config["image_size"])
    # Train on the 1200 train + validation characters, test on the 423 test characters
    # (Santoro et al.'s 1200/423 split sizes), all with rotations as extra classes.
    train_pool = np.concatenate([ds.pool("train"), ds.pool("val")])
    # Any shots/queries split with shots + queries = instances gives the same sequences.
    sampler = mj.pool_sampler(train_pool, ways=ways, shots=1, queries=instances - 1)
    learner = make_learner(method, config)
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        make_optimizer(config),
        steps=config["steps"][method],
        key=key,
        tasks=config["tasks"],
        metrics_path=None if workdir is None else f"{workdir}/metrics_{method}.jsonl",
        log_every=config["log_every"],
        progress=progress,
        time_limit=config["time_limit"],
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    test = mj.pool_sampler(ds.pool("test"), ways=ways, shots=1, queries=instances - 1)
    accuracies = per_instance_accuracy(
        learner,
        state.params,
        test,
        key=jax.random.fold_in(key, 1000),
        episodes=config["eval_episodes"],
    )
    records = []
    for k in REPORTED:
        if k > instances:
            continue
        value, ci95 = mean_ci95(accuracies[f"instance_{k}"])
        records.append(
            dict(
                benchmark="mann_omniglot",
                method=method,
                dataset="omniglot-vinyals",
                setting=f"{ways}-way instance {k}",
                metric="accuracy",
                transductive=mj.is_transductive(learner, state.params, test, key=key),
                value=value,
                ci95=ci95,
                paper=PAPER[method][k] if ways == 5 else None,
                steps=int(state.step),
                time_limit_s=config["time_limit"],
                tasks_per_step=config["tasks"],
                optimizer=f"{config['optimizer']} {config['learning_rate']:g}",
                image_size=config["image_size"],
                instances=instances,
                test_episodes=config["eval_episodes"],
                wall_s=round(wall, 1),
                final_train_loss=history[-1]["loss"] if history else None,
            )
        )
    return records


def run(config: dict, *, methods=None, data_dir=None, workdir=None, progress=True):
    """MANN and the LSTM (or ``methods``); yields each model's records as it is scored."""
    for method in methods or ("MANN", "LSTM"):
        yield train_and_evaluate(
            config, method, data_dir=data_dir, workdir=workdir, progress=progress
        )
