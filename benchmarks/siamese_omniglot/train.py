"""Trains a Siamese network on the background alphabets; scores Lake's one-shot runs."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj
from metajax.datasets.omniglot_alphabets import omniglot_alphabets, within_alphabet_sampler
from metajax.learners.metric.siamese import AffineDistortion, pair_sampler, siamese

# Koch, Zemel & Salakhutdinov 2015, Table 2: convolutional Siamese net, 20-way
# within-alphabet one-shot classification on Omniglot's evaluation alphabets.
PAPER = 0.920


METHODS = {"verification": "Siamese", "episode": "Siamese (episode objective)"}


def load_data(config: dict, data_dir=None):
    """The training sampler, its description, and the test sampler (Lake's one-shot runs)."""
    ds = mj.datasets.load("omniglot-lake", data_dir=data_dir)
    train_pool = ds.pool("train")
    train_alphabets, _ = omniglot_alphabets(ds.class_names["train"])
    test_alphabets, test_names = omniglot_alphabets(ds.class_names["test"])
    if config["rotations"]:
        # Vinyals' and Snell's augmentation on the background set: each character at 90,
        # 180 and 270 degrees is a class of its own, in an alphabet of its own.
        groups = int(train_alphabets.max()) + 1
        train_pool = np.concatenate([np.rot90(train_pool, k, axes=(2, 3)) for k in range(4)])
        train_alphabets = np.concatenate([train_alphabets + k * groups for k in range(4)])
    if config["sampler"] == "alphabet":
        sampler = within_alphabet_sampler(
            train_pool,
            train_alphabets,
            ways=config["train_ways"],
            shots=1,
            queries=config["queries"],
            shared_drawers=False,
        )
        train_setting = f"{config['train_ways']}w1s{config['queries']}q-within-alphabet"
    elif config["sampler"] == "random":
        # Snell et al.'s training episodes: classes from every background alphabet.
        sampler = mj.pool_sampler(
            train_pool, ways=config["train_ways"], shots=1, queries=config["queries"]
        )
        train_setting = f"{config['train_ways']}w1s{config['queries']}q"
    elif config["sampler"] == "pairs":
        sampler = pair_sampler(train_pool, pairs=config["pairs"])
        train_setting = f"{config['pairs']}-pairs"
    else:
        raise ValueError(
            f"config sampler must be 'alphabet', 'random' or 'pairs', got {config['sampler']!r}"
        )
    # One episode is one of Lake's runs: `ways` characters of one evaluation alphabet,
    # one drawer's images as the support set and another's as the queries.
    test = within_alphabet_sampler(
        ds.pool("test"), test_alphabets, ways=config["test_ways"], shots=1, queries=1
    )
    if config["rotations"]:
        train_setting += ", rotations as classes"
    return sampler, train_setting, test, len(test_names)


def _train(learner, sampler, config, *, steps, time_limit, key, workdir, name, progress):
    schedule = optax.exponential_decay(
        config["learning_rate"], config["decay_every"], 0.5, staircase=True
    )
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        sampler,
        optax.adam(schedule),
        steps=steps,
        key=key,
        metrics_path=None if workdir is None else f"{workdir}/{name}-metrics.jsonl",
        log_every=config["log_every"],
        progress=progress,
        time_limit=time_limit,
    )
    jax.block_until_ready(state.params)
    return state, history, time.perf_counter() - start


def _record(config, method, result, *, transductive, steps, wall, train_setting, n_alphabets):
    ways = config["test_ways"]
    tag = config.get("tag")
    return dict(
        benchmark="siamese_omniglot",
        method=method,
        dataset="omniglot-lake",
        setting=f"{ways}w1s-within-alphabet" + (f", {tag}" if tag else ""),
        metric="accuracy",
        transductive=transductive,
        value=result.mean["accuracy"],
        ci95=result.ci95["accuracy"],
        paper=PAPER if method == "Siamese" else None,
        steps=steps,
        train_setting=train_setting,
        test_episodes=config["eval_episodes"],
        test_trials=config["eval_episodes"] * ways,
        test_alphabets=n_alphabets,
        image_size=28,
        time_limit_s=config["time_limit"],
        # A model read from another's training has no training time of its own.
        **({} if wall is None else {"wall_s": round(wall, 1)}),
    )


def run(config: dict, *, data_dir=None, workdir=None, progress=True):
    """Each of ``config["objectives"]``, then (with ``compare_protonet``) the same
    encoder read as a ProtoNet, and a ProtoNet trained on the same episodes for the
    steps the first model ran; yields each record as it is made.

    Every model starts from the same key and sees the same episodes, so the records
    differ only in the objective (and, for ProtoNet, the metric and the head).
    """
    if config["compare_protonet"] and config["sampler"] == "pairs":
        # Refused before any training, not after the Siamese runs.
        raise ValueError("config compare_protonet needs N-way episodes, not sampler='pairs'")
    sampler, train_setting, test, n_alphabets = load_data(config, data_dir)
    distortion = AffineDistortion() if config["distortion"] else None
    train_setting += (", distorted" if distortion else "") + f", pairing={config['pairing']}"
    key = jax.random.key(config["seed"])
    eval_key = jax.random.fold_in(key, 1000 + config["test_ways"])
    protonet = mj.protonet()  # Conv-4 at 64 filters: the Siamese twin's own encoder
    steps = None
    for objective in config["objectives"]:
        learner = siamese(pairing=config["pairing"], distortion=distortion, objective=objective)
        state, history, wall = _train(
            learner,
            sampler,
            config,
            steps=config["steps"] if steps is None else steps,
            # Later models train for exactly the steps the first one ran: no time cap.
            time_limit=config["time_limit"] if steps is None else None,
            key=key,
            workdir=workdir,
            name=objective,
            progress=progress,
        )
        steps = int(state.step) if steps is None else steps
        result = mj.evaluate(
            learner, state.params, test, key=eval_key, episodes=config["eval_episodes"]
        )
        record = _record(
            config,
            METHODS[objective],
            result,
            transductive=mj.is_transductive(learner, state.params, test, key=key),
            steps=int(state.step),
            wall=wall,
            train_setting=train_setting + f", objective={objective}",
            n_alphabets=n_alphabets,
        )
        if history:
            record["final_train_loss"] = history[-1]["loss"]
            # Balanced same/different accuracy for "verification", N-way for "episode".
            record["final_train_accuracy"] = history[-1]["accuracy"]
        yield [record]
        if config["compare_protonet"]:
            # The head or the embedding? The trained twin, read with ProtoNet's rule.
            encoder = state.params["encoder"]
            result = mj.evaluate(
                protonet, encoder, test, key=eval_key, episodes=config["eval_episodes"]
            )
            yield [
                _record(
                    config,
                    f"{METHODS[objective]} encoder, nearest prototype",
                    result,
                    transductive=mj.is_transductive(protonet, encoder, test, key=key),
                    steps=int(state.step),
                    wall=None,
                    train_setting=train_setting + f", objective={objective}",
                    n_alphabets=n_alphabets,
                )
            ]
    if config["compare_protonet"]:
        state, history, wall = _train(
            protonet,
            sampler,
            config,
            steps=steps,
            time_limit=None,
            key=key,
            workdir=workdir,
            name="protonet",
            progress=progress,
        )
        result = mj.evaluate(
            protonet, state.params, test, key=eval_key, episodes=config["eval_episodes"]
        )
        record = _record(
            config,
            "ProtoNet (same episodes and steps)",
            result,
            transductive=mj.is_transductive(protonet, state.params, test, key=key),
            steps=int(state.step),
            wall=wall,
            train_setting=train_setting.replace(", distorted", ""),
            n_alphabets=n_alphabets,
        )
        record["final_train_loss"] = history[-1]["loss"] if history else None
        yield [record]
