"""Trains MAML-family learners on Omniglot and evaluates them; returns result records."""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

import metajax as mj

# Finn et al. 2017 Table 1 (MAML, first-order MAML); Rajeswaran et al. 2019 Table 2 (iMAML-HF);
# Nichol et al. 2018 Table 1 (Reptile, transductive: Conv-4's batch norm normalises with the
# statistics of the query set it is given, so every row here is, as in the papers' code);
# Li et al. 2017 Table 1 (Meta-SGD); Raghu et al. 2020 Table 2 (ANIL, 20-way only).
PAPER = {
    ("MAML", 5, 1): 0.987,
    ("MAML", 5, 5): 0.999,
    ("MAML", 20, 1): 0.958,
    ("MAML", 20, 5): 0.989,
    ("FOMAML", 5, 1): 0.983,
    ("FOMAML", 5, 5): 0.992,
    ("FOMAML", 20, 1): 0.894,
    ("FOMAML", 20, 5): 0.979,
    ("iMAML", 5, 1): 0.9916,
    ("iMAML", 20, 1): 0.9446,
    ("Reptile", 5, 1): 0.9768,
    ("Reptile", 5, 5): 0.9948,
    ("Reptile", 20, 1): 0.8943,
    ("Reptile", 20, 5): 0.9712,
    ("Meta-SGD", 5, 1): 0.9953,
    ("Meta-SGD", 5, 5): 0.9993,
    ("Meta-SGD", 20, 1): 0.9593,
    ("Meta-SGD", 20, 5): 0.9897,
    ("ANIL", 20, 1): 0.962,
    ("ANIL", 20, 5): 0.980,
}
METHODS = ("MAML", "FOMAML", "iMAML", "Reptile", "Meta-SGD", "ANIL")


def learner_for(method: str, ways: int, config: dict):
    # ``run`` checked ``method`` against METHODS.
    conv = dict(convolution=config["convolution"])
    if method == "ANIL":
        return mj.anil(mj.conv4(**conv), outputs=ways, **config["maml"][ways])
    model = mj.conv4(outputs=ways, **conv)
    if method == "iMAML":
        return mj.imaml(model, **config["imaml"][ways])
    if method == "Reptile":
        c = config["reptile"]
        return mj.reptile(
            model,
            inner_optimizer=optax.adam(c["inner_learning_rate"], b1=0.0),
            inner_steps=c["inner_steps"],
            test_inner_steps=c["test_inner_steps"],
        )
    if method == "Meta-SGD":
        return mj.metasgd(model, **config["metasgd"])
    return mj.maml(model, first_order=method == "FOMAML", **config["maml"][ways])


def optimizer_for(method: str, steps: int, config: dict) -> optax.GradientTransformation:
    """Adam for every method but Reptile, whose outer step is SGD at epsilon annealed
    linearly to 0 over the run (Nichol et al. 2018)."""
    if method == "Reptile":
        return optax.sgd(optax.linear_schedule(config["reptile"]["epsilon"], 0.0, steps))
    return optax.adam(config["learning_rate"])


def tasks_for(method: str, ways: int, config: dict) -> int:
    return config["reptile"]["tasks"] if method == "Reptile" else config["tasks"][ways]


def steps_for(method: str, ways: int, config: dict) -> int:
    own = config["reptile"].get("steps") if method == "Reptile" else None
    return (own or config["steps"])[ways]


def train_and_evaluate(
    config: dict,
    method: str,
    ways: int,
    shots: int = 1,
    *,
    data_dir=None,
    workdir=None,
    progress=True,
):
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    pool = ds.pool("train")
    if config["trainval"]:
        pool = np.concatenate([pool, ds.pool("val")])
    queries = config["queries"]
    train_shots, train_queries = shots, queries
    if method == "Reptile":
        # Reptile trains on more shots than it is tested with (Nichol et al.: 10 on
        # Omniglot); its update needs no query set, which only scores the training metrics.
        train_shots, train_queries = config["reptile"]["train_shots"], config["reptile"]["queries"]
    train = mj.pool_sampler(pool, ways=ways, shots=train_shots, queries=train_queries)
    test = mj.pool_sampler(ds.pool("test"), ways=ways, shots=shots, queries=queries)
    learner = learner_for(method, ways, config)
    key = jax.random.key(config["seed"])
    steps, tasks = steps_for(method, ways, config), tasks_for(method, ways, config)
    start = time.perf_counter()
    state, history = mj.meta_train(
        learner,
        train,
        optimizer_for(method, steps, config),
        steps=steps,
        key=key,
        tasks=tasks,
        log_every=config["log_every"],
        progress=progress,
        metrics_path=None if workdir is None else f"{workdir}/{method}_{ways}w{shots}s.jsonl",
        time_limit=config.get("time_limit"),
    )
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    evaluations = [(method, learner)]
    if method == "iMAML" and config.get("imaml_released_test"):
        # Rajeswaran et al.'s released evaluation adapts a test task without the proximal
        # pull (lambda 0) for 16 steps: the same meta-parameters, scored both ways.
        released = dict(config["imaml"][ways], **config["imaml_released_test"])
        label = "iMAML, tested with lambda {test_proximal:g} and {test_inner_steps} steps"
        evaluations.append(
            (
                label.format(**released),
                learner_for(method, ways, dict(config, imaml={ways: released})),
            )
        )
    # What the evaluations share: the training run they score.
    run_fields = dict(
        benchmark="maml_omniglot",
        dataset="omniglot-vinyals",
        setting=f"{ways}w{shots}s",
        metric="accuracy",
        paper=PAPER.get((method, ways, shots)),
        steps=int(state.step),
        scheduled_steps=steps,
        time_limit_s=config.get("time_limit"),
        tasks=tasks,
        train_shots=train_shots,
        test_episodes=config["eval_episodes"],
        wall_s=round(wall, 1),
        final_train_loss=history[-1]["loss"] if history else None,
        final_cg_residual=history[-1].get("cg_residual") if history else None,
    )
    records = []
    for name, evaluated in evaluations:
        result = mj.evaluate(
            evaluated,
            state.params,
            test,
            key=jax.random.fold_in(key, ways),
            episodes=config["eval_episodes"],
            batch=10,
        )
        records.append(
            dict(
                run_fields,
                method=name,
                value=result.mean["accuracy"],
                ci95=result.ci95["accuracy"],
                transductive=mj.is_transductive(evaluated, state.params, test, key=key),
            )
        )
    return records


def run(config: dict, *, data_dir=None, workdir=None, progress=True):
    """Every ways, shots and method of ``config``; yields each run's record as it ends."""
    for method in config["methods"]:
        if method not in METHODS:
            raise ValueError(f"methods must be among {METHODS}, got {method!r}")
    for ways in config["ways"]:
        for shots in config["shots"]:
            for method in config["methods"]:
                yield train_and_evaluate(
                    config,
                    method,
                    ways,
                    shots,
                    data_dir=data_dir,
                    workdir=workdir,
                    progress=progress,
                )
