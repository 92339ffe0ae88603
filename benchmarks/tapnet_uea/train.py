"""Trains and evaluates TapNet on UEA sets; returns result records."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import optax

import metajax as mj
from metajax.datasets.uea import class_sampler, load_uea, uea_few_shot
from metajax.learners.metric.tapnet import tapnet

# Zhang et al. 2020, Table 2 (accuracy on the official test split).
PAPER = {"JapaneseVowels": 0.965, "BasicMotions": 1.000}


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score 95% interval of a binomial proportion.

    Unlike the normal interval it stays inside [0, 1] and is not empty at 100%.
    """
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def make_learner(config, ds, classes):
    return tapnet(
        channels=ds.channels,
        length=ds.length,
        groups=config["groups"],
        filters=config["filters"],
        kernels=config["kernels"],
        dilation=config["dilation"],
        lstm_units=config["lstm_units"],
        mapping=config["mapping"],
        attention_units=config["attention_units"],
        classes=classes,
        separation=config["separation"],
        seed=config["seed"],
    )


def optimizer(config):
    # PyTorch's Adam(weight_decay=...) adds the decay to the gradient before Adam.
    return optax.chain(
        optax.add_decayed_weights(config["weight_decay"]), optax.adam(config["learning_rate"])
    )


def paper_protocol(config, name, *, workdir=None, progress=True):
    """Official train split as support, official test split scored; Wilson CI over test series."""
    ds = load_uea(name)
    pool = ds.pool("train")  # capped to the smallest class; both sets are balanced anyway
    shots = max(1, int(round(config["support_fraction"] * pool.shape[1])))
    sampler = class_sampler(pool, shots=shots, queries=pool.shape[1] - shots)
    learner = make_learner(config, ds, ds.classes)
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optimizer(config),
        steps=config["steps"],
        key=key,
        metrics_path=None if workdir is None else f"{workdir}/metrics_{name}.jsonl",
        log_every=config["log_every"],
        progress=progress,
        time_limit=config["time_limit"],
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    logits = jax.jit(learner.predict)(state.params, ds.train, ds.test.x, None)
    correct = int(jnp.sum(jnp.argmax(logits, -1) == ds.test.y))
    total = len(ds.test.y)
    low, high = wilson_interval(correct, total)
    return [
        dict(
            benchmark="tapnet_uea",
            method="TapNet",
            dataset=f"uea-{name}",
            setting="official split",
            metric="accuracy",
            transductive=mj.is_transductive(learner, state.params, sampler, key=key),
            value=correct / total,
            ci95=(high - low) / 2,
            ci95_low=low,
            ci95_high=high,
            ci_method=f"Wilson score interval over the {total} test series (one seed)",
            paper=PAPER[name],
            steps=int(state.step),
            train_setting=f"{ds.classes}w{shots}s{pool.shape[1] - shots}q, all classes",
            test_examples=total,
            wall_s=round(wall, 1),
            final_train_loss=history[-1]["loss"] if history else None,
        )
    ]


def episodic(config, name, *, workdir=None, progress=True):
    """N-way k-shot on meta-test classes never seen in meta-training; CI over episodes."""
    cfg = config["episodic"]
    ds = load_uea(name)
    fs = uea_few_shot(ds, test_fraction=cfg["test_fraction"], seed=config["seed"])
    ways = cfg["ways"]
    sampler = mj.pool_sampler(
        fs.pool("train"), ways=ways, shots=cfg["train_shots"], queries=cfg["queries"]
    )
    learner = make_learner(config, ds, None)
    key = jax.random.key(config["seed"] + 1)
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optimizer(config),
        steps=cfg["steps"],
        key=key,
        metrics_path=None if workdir is None else f"{workdir}/metrics_{name}_episodic.jsonl",
        log_every=config["log_every"],
        progress=progress,
        time_limit=cfg["time_limit"],
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    records = []
    for shots in cfg["test_shots"]:
        test = mj.pool_sampler(fs.pool("test"), ways=ways, shots=shots, queries=cfg["test_queries"])
        result = mj.evaluate(
            learner,
            state.params,
            test,
            key=jax.random.fold_in(key, 1000 + shots),
            episodes=cfg["eval_episodes"],
        )
        records.append(
            dict(
                benchmark="tapnet_uea",
                method="TapNet",
                dataset=f"uea-{name}",
                setting=f"{ways}w{shots}s unseen classes",
                metric="accuracy",
                transductive=mj.is_transductive(learner, state.params, test, key=key),
                value=result.mean["accuracy"],
                ci95=result.ci95["accuracy"],
                ci_method=f"normal interval over {cfg['eval_episodes']} test episodes",
                paper=None,
                steps=int(state.step),
                train_setting=f"{ways}w{cfg['train_shots']}s{cfg['queries']}q",
                class_split={k: list(v) for k, v in fs.class_names.items()},
                test_episodes=cfg["eval_episodes"],
                wall_s=round(wall, 1),
                final_train_loss=history[-1]["loss"] if history else None,
            )
        )
    return records


def train_and_evaluate(config, name, *, episodes=False, workdir=None, progress=True):
    """The paper-protocol record of ``name``, or its N-way k-shot records if ``episodes``."""
    if episodes:
        return episodic(config, name, workdir=workdir, progress=progress)
    return paper_protocol(config, name, workdir=workdir, progress=progress)


def run(config: dict, *, datasets=None, episodic=True, workdir=None, progress=True):
    """The paper protocol on every dataset of ``config`` (or ``datasets``), then the
    N-way k-shot rows (unless not ``episodic``) of the config's episodic datasets (those
    of them in ``datasets``, when given); yields each model's records."""
    jobs = [(name, False) for name in datasets or config["datasets"]]
    if episodic:
        jobs += [
            (name, True)
            for name in config["episodic"]["datasets"]
            if datasets is None or name in datasets
        ]
    for name, episodes in jobs:
        records = train_and_evaluate(
            config, name, episodes=episodes, workdir=workdir, progress=progress
        )
        yield [{**record, "seed": config["seed"]} for record in records]
