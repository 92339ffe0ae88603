"""Trains a Siamese network on the background alphabets; scores Lake's one-shot runs."""

from __future__ import annotations

import time

import jax
import optax

import metajax as mj
from metajax.datasets.omniglot_alphabets import omniglot_alphabets, within_alphabet_sampler
from metajax.learners.metric.siamese import AffineDistortion, pair_sampler, siamese

# Koch, Zemel & Salakhutdinov 2015, Table 2: convolutional Siamese net, 20-way
# within-alphabet one-shot classification on Omniglot's evaluation alphabets.
PAPER = 0.920


def train_and_evaluate(config: dict, *, data_dir=None, workdir=None, progress=True):
    ds = mj.datasets.load("omniglot-lake", data_dir=data_dir)
    train_alphabets, _ = omniglot_alphabets(ds.class_names["train"])
    test_alphabets, test_names = omniglot_alphabets(ds.class_names["test"])
    if config["sampler"] == "alphabet":
        sampler = within_alphabet_sampler(
            ds.pool("train"),
            train_alphabets,
            ways=config["train_ways"],
            shots=1,
            queries=config["queries"],
            shared_drawers=False,
        )
        train_setting = f"{config['train_ways']}w1s{config['queries']}q-within-alphabet"
    elif config["sampler"] == "pairs":
        sampler = pair_sampler(ds.pool("train"), pairs=config["pairs"])
        train_setting = f"{config['pairs']}-pairs"
    else:
        raise ValueError(f"config sampler must be 'alphabet' or 'pairs', got {config['sampler']!r}")
    learner = siamese(
        pairing=config["pairing"],
        distortion=AffineDistortion() if config["distortion"] else None,
    )
    schedule = optax.exponential_decay(
        config["learning_rate"], config["decay_every"], 0.5, staircase=True
    )
    key = jax.random.key(config["seed"])
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optax.adam(schedule),
        steps=config["steps"],
        key=key,
        metrics_path=None if workdir is None else f"{workdir}/metrics.jsonl",
        log_every=config["log_every"],
        progress=progress,
        time_limit=config["time_limit"],
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    ways = config["test_ways"]
    # One episode is one of Lake's runs: `ways` characters of one evaluation alphabet,
    # one drawer's images as the support set and another's as the queries.
    test = within_alphabet_sampler(ds.pool("test"), test_alphabets, ways=ways, shots=1, queries=1)
    result = mj.evaluate(
        learner,
        state.params,
        test,
        key=jax.random.fold_in(key, 1000 + ways),
        episodes=config["eval_episodes"],
    )
    return [
        dict(
            benchmark="siamese_omniglot",
            method="Siamese",
            dataset="omniglot-lake",
            setting=f"{ways}w1s-within-alphabet",
            metric="accuracy",
            transductive=mj.is_transductive(learner, state.params, test, key=key),
            value=result.mean["accuracy"],
            ci95=result.ci95["accuracy"],
            paper=PAPER,
            steps=int(state.step),
            train_setting=train_setting
            + (", distorted" if config["distortion"] else "")
            + f", pairing={config['pairing']}",
            test_episodes=config["eval_episodes"],
            test_trials=config["eval_episodes"] * ways,
            test_alphabets=len(test_names),
            image_size=28,
            time_limit_s=config["time_limit"],
            wall_s=round(wall, 1),
            final_train_loss=history[-1]["loss"] if history else None,
            final_train_verification_accuracy=history[-1]["accuracy"] if history else None,
        )
    ]


def run(config: dict, *, data_dir=None, workdir=None, progress=True):
    """The one model of ``config``; yields its record."""
    yield train_and_evaluate(config, data_dir=data_dir, workdir=workdir, progress=progress)
