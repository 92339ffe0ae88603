"""MAML and the pretrained baseline on sinusoids; returns result records."""

from __future__ import annotations

import time

import jax
import optax

import metajax as mj


def train_and_evaluate(config: dict, shots: int, *, workdir=None, progress=True):
    model = mj.mlp(hidden=tuple(config["hidden"]), outputs=1)
    queries = config["train_queries"] or shots
    train = mj.datasets.sinusoid_sampler(shots=shots, queries=queries)
    test = mj.datasets.sinusoid_sampler(shots=shots, queries=config["test_queries"])
    key = jax.random.key(config["seed"])
    records = []
    methods = {
        "MAML": mj.maml(model, inner_lr=config["inner_lr"], inner_steps=config["inner_steps"]),
        "pretrained": mj.finetune(model, inner_lr=config["inner_lr"]),
    }
    for method, learner in methods.items():
        start = time.perf_counter()
        state, history = mj.meta_train(
            learner,
            train,
            optax.adam(config["learning_rate"]),
            steps=config["steps"],
            key=key,
            tasks=config["tasks"],
            log_every=config["log_every"],
            progress=progress,
            metrics_path=None if workdir is None else f"{workdir}/{method}_{shots}shot.jsonl",
        )
        jax.block_until_ready(state.params)
        wall = time.perf_counter() - start
        for test_steps in config["test_steps"]:
            # The same meta-parameters, adapted with a given number of SGD steps at test.
            scorer = mj.finetune(model, inner_lr=config["inner_lr"], test_inner_steps=test_steps)
            result = mj.evaluate(
                scorer,
                state.params,
                test,
                key=jax.random.fold_in(key, 7),
                episodes=config["eval_episodes"],
            )
            records.append(
                dict(
                    benchmark="maml_sinusoid",
                    method=method,
                    dataset="sinusoid",
                    setting=f"K={shots}, {test_steps} step{'s' if test_steps != 1 else ''}",
                    metric="mse",
                    value=result.mean["mse"],
                    ci95=result.ci95["mse"],
                    paper=None,  # Finn et al. show these as curves (Fig. 2, 3), not numbers
                    steps=config["steps"],
                    tasks=config["tasks"],
                    test_episodes=config["eval_episodes"],
                    test_queries=config["test_queries"],
                    wall_s=round(wall, 1),
                    final_train_loss=history[-1]["loss"] if history else None,
                )
            )
    return records


def run(config: dict, *, workdir=None, progress=True):
    """MAML and the pretrained baseline at every K of ``config``; yields each K's records."""
    for shots in config["shots"]:
        yield train_and_evaluate(config, shots, workdir=workdir, progress=progress)
