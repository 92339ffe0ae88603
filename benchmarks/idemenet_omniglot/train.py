"""Trains IDeMe-Net and a ProtoNet of the same backbone and budget on Omniglot; returns records."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj
from metajax.learners.metric.idemenet import idemenet
from metajax.training.trainer import make_eval_step, mean_ci95

METHODS = ("IDeMe-Net", "ProtoNet")


def load_data(config: dict, data_dir=None):
    """The meta-training pool, the meta-test pool and a gallery of meta-training images."""
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    train_pool = ds.pool("train")
    if config["trainval"]:
        # The papers' final models train on the 1200 train+val characters (4800 classes).
        train_pool = np.concatenate([train_pool, ds.pool("val")])
    rng = np.random.default_rng(config["seed"])
    classes = rng.choice(len(train_pool), config["gallery_classes"], replace=False)
    examples = rng.integers(0, train_pool.shape[1], len(classes))
    gallery = train_pool[classes, examples]  # meta-training characters only
    return train_pool, ds.pool("test"), gallery


def make_learner(config: dict, method: str, gallery):
    model = mj.conv4(filters=config["filters"])
    if method == "ProtoNet":
        return mj.protonet(model)
    return idemenet(
        gallery=gallery,
        model=model,
        generated=config["generated"],
        grid=config["grid"],
        neighbours=config["neighbours"],
        candidates=config["candidates"],
        deformation_filters=config["deformation_filters"],
    )


def episode_accuracies(learner, params, sampler, *, key, episodes: int, batch: int):
    """Per-episode test accuracies; the same key gives the same episodes for every learner."""
    step = make_eval_step(learner, sampler, tasks=batch)
    chunks = [
        jax.device_get(step(params, k, sampler.data)["accuracy"])
        for k in jax.random.split(key, -(-episodes // batch))
    ]
    return np.concatenate(chunks)[:episodes]


def train_and_evaluate(
    config: dict,
    method: str,
    gallery,
    train_pool,
    test_pool,
    *,
    steps: int | None = None,
    workdir=None,
    progress=True,
):
    """Trains one model; returns its record and its per-episode test accuracies."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    ways, shots = config["ways"], config["shots"]
    sampler = mj.pool_sampler(train_pool, ways=ways, shots=shots, queries=config["queries"])
    schedule = optax.exponential_decay(
        config["learning_rate"], config["decay_every"], 0.5, staircase=True
    )
    learner = make_learner(config, method, gallery)
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optax.adam(schedule),
        steps=config["steps"] if steps is None else steps,
        key=key,
        metrics_path=None if workdir is None else f"{workdir}/metrics_{method}.jsonl",
        log_every=config["log_every"],
        progress=progress,
        # ProtoNet is given IDeMe-Net's step count, so only IDeMe-Net is time-limited.
        time_limit=config["time_limit"] if steps is None else None,
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    test = mj.pool_sampler(test_pool, ways=ways, shots=shots, queries=config["test_queries"])
    accuracies = episode_accuracies(
        learner,
        state.params,
        test,
        key=jax.random.fold_in(key, 1000 + ways),
        episodes=config["eval_episodes"],
        batch=min(config["eval_batch"], config["eval_episodes"]),
    )
    mean, ci95 = mean_ci95(accuracies)
    record = dict(
        benchmark="idemenet_omniglot",
        method=method,
        dataset="omniglot-vinyals",
        setting=f"{ways}w{shots}s",
        metric="accuracy",
        transductive=mj.is_transductive(learner, state.params, test, key=key),
        value=mean,
        ci95=ci95,
        paper=None,
        steps=int(state.step),
        train_setting=f"{ways}w{shots}s{config['queries']}q",
        backbone=f"conv4-{config['filters']}",
        optimizer=f"adam {config['learning_rate']:g}",
        test_queries=config["test_queries"],
        test_episodes=config["eval_episodes"],
        wall_s=round(wall, 1),
        final_train_loss=history[-1]["loss"] if history else None,
        final_train_accuracy=history[-1]["accuracy"] if history else None,
    )
    if method == "IDeMe-Net":
        record.update(
            generated=config["generated"],
            grid=config["grid"],
            neighbours=config["neighbours"],
            candidates=config["candidates"],
            gallery_size=len(gallery),
            time_limit_s=config["time_limit"],
        )
    return record, accuracies


def gain_record(config: dict, idemenet_record: dict, idemenet_acc, protonet_acc) -> dict:
    """IDeMe-Net's accuracy minus ProtoNet's, with a 95% interval over the paired episodes."""
    mean, ci95 = mean_ci95(np.asarray(idemenet_acc) - np.asarray(protonet_acc))
    return dict(
        benchmark="idemenet_omniglot",
        method="IDeMe-Net-minus-ProtoNet",
        dataset="omniglot-vinyals",
        setting=idemenet_record["setting"],
        metric="accuracy_gain",
        transductive=idemenet_record["transductive"],
        value=mean,
        ci95=ci95,
        paper=None,
        steps=idemenet_record["steps"],
        test_episodes=config["eval_episodes"],
        paired="the same test episodes for both models",
    )


def run(config: dict, *, data_dir=None, workdir=None, progress=True):
    """IDeMe-Net, then ProtoNet for exactly the steps IDeMe-Net ran (the same budget),
    then their gain; yields each record as it is made."""
    train_pool, test_pool, gallery = load_data(config, data_dir)
    records, accuracies = [], []
    for method in METHODS:
        record, acc = train_and_evaluate(
            config,
            method,
            gallery,
            train_pool,
            test_pool,
            steps=records[0]["steps"] if records else None,
            workdir=workdir,
            progress=progress,
        )
        records.append(record)
        accuracies.append(acc)
        yield [record]
    yield [gain_record(config, records[0], *accuracies)]
