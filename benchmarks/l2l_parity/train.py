"""metajax against learn2learn 0.2.0 at equal updates, on the same Omniglot pools.

:func:`run` exports the Omniglot pools metajax trains and tests on to one ``.npz`` (in a
scratch folder, never the repository), trains metajax's learner on them in this
process, then ``l2l_train.py`` in the PyTorch venv (``maml_speed/setup_env.sh``) with the
same model, hyperparameters, meta-batch and number of updates, each side evaluating at
the same steps on the same number of test episodes. One record per method and
evaluation step holds both accuracies with their 95% intervals and whether the two
intervals overlap (``within_cis``): the parity criterion of issue 16.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import optax

import metajax as mj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.speed import torch_python  # noqa: E402

HERE = Path(__file__).resolve().parent
METHODS = ("MAML", "FOMAML", "Meta-SGD", "ANIL")


def export_pools(config: dict, data_dir, folder: Path) -> Path:
    """The train (train+val with ``trainval``) and test pools as ``folder/pools.npz``."""
    ds = mj.datasets.load("omniglot", data_dir=data_dir)
    train = ds.pool("train")
    if config["trainval"]:
        train = np.concatenate([train, ds.pool("val")])
    path = folder / "pools.npz"
    np.savez(
        path, train=np.asarray(train, np.float32), test=np.asarray(ds.pool("test"), np.float32)
    )
    return path


def test_inner_steps(method: str, config: dict) -> int:
    """Meta-SGD adapts its learned rates for the one step it was trained with (Li et al.)."""
    return (
        config["metasgd"]["test_inner_steps"]
        if method == "Meta-SGD"
        else config["test_inner_steps"]
    )


def learner_for(method: str, config: dict):
    conv = dict(filters=config["filters"], blocks=config["blocks"])
    test_steps = test_inner_steps(method, config)
    if method == "ANIL":
        return mj.anil(
            mj.conv4(**conv),
            outputs=config["ways"],
            inner_lr=config["inner_lr"],
            inner_steps=config["inner_steps"],
            test_inner_steps=test_steps,
        )
    model = mj.conv4(outputs=config["ways"], **conv)
    if method == "Meta-SGD":
        return mj.metasgd(
            model,
            inner_steps=config["inner_steps"],
            test_inner_steps=test_steps,
            lr_init=tuple(config["metasgd"]["lr_init"]),
        )
    return mj.maml(
        model,
        inner_lr=config["inner_lr"],
        inner_steps=config["inner_steps"],
        test_inner_steps=test_steps,
        first_order=method == "FOMAML",
    )


def torch_like_init(params, key):
    """``params`` with every kernel, and the bias beside it, drawn as torch draws them.

    torch's ``Conv2d`` and ``Linear`` default to ``U(-b, b)`` with ``b = 1 / sqrt(fan_in)``
    for weights and biases alike (Kaiming uniform with ``a = sqrt 5``): weights with a
    standard deviation 0.58 times Flax's LeCun normal. Behind batch norm a smaller kernel
    takes larger effective steps, so the two sides start the same only if they draw
    alike. Batch norm's scale and offset (1 and 0 on both sides) and Meta-SGD's rates
    are left as they are.
    """
    if not isinstance(params, dict):
        return params

    def uniform(key, like, kernel):
        bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))  # fan_in: all but the outputs
        return jax.random.uniform(key, like.shape, like.dtype, -bound, bound)

    out = {}
    for i, (name, value) in enumerate(sorted(params.items())):
        sub = jax.random.fold_in(key, i)
        if name == "inner_lr":
            out[name] = value
        elif name == "kernel":
            out[name] = uniform(sub, value, value)
        else:
            out[name] = torch_like_init(value, sub)
    if "kernel" in params and "bias" in params:
        bias_key = jax.random.fold_in(key, len(params))
        out["bias"] = uniform(bias_key, params["bias"], params["kernel"])
    return out


def train_metajax(config: dict, method: str, pools: Path) -> list[dict]:
    """Trains ``config["steps"]`` meta-steps; an evaluation at every step of ``eval_at``."""
    with np.load(pools) as data:
        train_pool, test_pool = data["train"], data["test"]
    episode = dict(ways=config["ways"], shots=config["shots"], queries=config["queries"])
    train = mj.pool_sampler(train_pool, **episode)
    test = mj.pool_sampler(test_pool, **episode)
    learner = learner_for(method, config)
    optimizer = optax.adam(config["learning_rate"])
    key = jax.random.key(config["seed"])
    state = mj.init_state(learner, optimizer, train, key)
    if config["init"] == "torch":
        state = state._replace(params=torch_like_init(state.params, jax.random.fold_in(key, 7)))
    step = mj.make_train_step(learner, optimizer, train, tasks=config["tasks"])
    evaluations, train_s, since_last = [], 0.0, []
    for i in range(1, config["steps"] + 1):
        start = time.perf_counter()
        state, metrics = step(state, train.data)
        jax.block_until_ready(state)
        train_s += time.perf_counter() - start
        since_last.append(float(metrics["inner_loss_first"]))
        if i in config["eval_at"]:
            result = mj.evaluate(
                learner,
                state.params,
                test,
                key=jax.random.fold_in(key, 1),
                episodes=config["eval_episodes"],
                batch=10,
            )
            evaluations.append(
                dict(
                    step=i,
                    accuracy=result.mean["accuracy"],
                    ci95=result.ci95["accuracy"],
                    loss=float(metrics["loss"]),
                    inner_loss_first=float(np.mean(since_last)),
                    train_s=train_s,
                )
            )
            since_last = []
    return evaluations


def torch_command(config: dict, method: str, pools: Path, *, venv=None) -> list[str]:
    c = config
    command = [
        str(torch_python(venv)),
        str(HERE / "l2l_train.py"),
        f"--data={pools}",
        f"--ways={c['ways']}",
        f"--shots={c['shots']}",
        f"--queries={c['queries']}",
        f"--inner-lr={c['inner_lr']}",
        f"--inner-steps={c['inner_steps']}",
        f"--test-inner-steps={test_inner_steps(method, c)}",
        f"--tasks={c['tasks']}",
        f"--learning-rate={c['learning_rate']}",
        f"--steps={c['steps']}",
        f"--eval-episodes={c['eval_episodes']}",
        f"--filters={c['filters']}",
        f"--blocks={c['blocks']}",
        f"--threads={c['torch_threads']}",
        f"--seed={c['seed']}",
        "--eval-at",
        *map(str, c["eval_at"]),
    ]
    algorithm = {"Meta-SGD": "metasgd", "ANIL": "anil"}.get(method, "maml")
    command += [f"--algorithm={algorithm}"]
    if method == "Meta-SGD":
        command += ["--lr-init", *map(str, c["metasgd"]["lr_init"])]
    return command + (["--first-order"] if method == "FOMAML" else [])


def train_learn2learn(config: dict, method: str, pools: Path, *, venv=None):
    """learn2learn's evaluations (one dict per step of ``eval_at``) and its versions."""
    command = torch_command(config, method, pools, venv=venv)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    return lines[:-1], lines[-1]["versions"]


def setting(config: dict, step: int) -> str:
    """``"5w1s, 200 updates of 8"``; ``", seed 1"`` added for every seed but 0."""
    c = config
    seed = f", seed {c['seed']}" if c["seed"] else ""
    init = ", torch init" if c["init"] == "torch" else ""
    return f"{c['ways']}w{c['shots']}s, {step} updates of {c['tasks']}{seed}{init}"


def run(config: dict, *, data_dir=None, venv=None):
    """Every method of ``config`` on both sides; yields its records (one per evaluation)."""
    for method in config["methods"]:
        if method not in METHODS:
            raise ValueError(f"methods must be among {METHODS}, got {method!r}")
    if config["init"] not in ("flax", "torch"):
        raise ValueError(f"config init must be 'flax' or 'torch', got {config['init']!r}")
    if not all(1 <= s <= config["steps"] for s in config["eval_at"]):
        raise ValueError(
            f"eval_at must be steps in [1, {config['steps']}], got {config['eval_at']}"
        )
    torch_python(venv)  # fails early without the venv
    with tempfile.TemporaryDirectory(prefix="metajax-l2l-parity-") as folder:
        pools = export_pools(config, data_dir, Path(folder))
        for method in config["methods"]:
            ours = train_metajax(config, method, pools)
            theirs, versions = train_learn2learn(config, method, pools, venv=venv)
            records = []
            for a, b in zip(ours, theirs, strict=True):
                c = config
                records.append(
                    dict(
                        benchmark="l2l_parity",
                        method=f"{method} (metajax)",
                        dataset="omniglot-vinyals",
                        setting=setting(c, a["step"]),
                        metric="accuracy",
                        value=a["accuracy"],
                        ci95=a["ci95"],
                        paper=None,
                        baseline=f"{method} (learn2learn {versions['learn2learn']})",
                        baseline_value=b["accuracy"],
                        baseline_ci95=b["ci95"],
                        within_cis=abs(a["accuracy"] - b["accuracy"]) <= a["ci95"] + b["ci95"],
                        transductive=True,
                        steps=a["step"],
                        tasks=c["tasks"],
                        test_episodes=c["eval_episodes"],
                        wall_s=round(a["train_s"], 1),
                        baseline_train_s=round(b["train_s"], 1),
                        final_train_loss=a["loss"],
                        baseline_final_train_loss=b["loss"],
                        # The support loss before adaptation, averaged since the last
                        # evaluation: where FOMAML's grew (issue 16), on both sides.
                        inner_loss_first=a["inner_loss_first"],
                        baseline_inner_loss_first=b["inner_loss_first"],
                        inner_lr=c["inner_lr"],
                        metajax_init=c["init"],
                        inner_steps=c["inner_steps"],
                        test_inner_steps=test_inner_steps(method, c),
                        baseline_versions=versions,
                    )
                )
                print(
                    f"{method} after {a['step']} updates: metajax {100 * a['accuracy']:.2f} "
                    f"± {100 * a['ci95']:.2f}, learn2learn {100 * b['accuracy']:.2f} ± "
                    f"{100 * b['ci95']:.2f}, within the intervals: {records[-1]['within_cis']}; "
                    f"support loss before adaptation {a['inner_loss_first']:.3f} / "
                    f"{b['inner_loss_first']:.3f}",
                    flush=True,
                )
            yield records
