"""Run checkpoints: exact resume after SIGKILL, damaged checkpoints skipped, NaN guard."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metajax import meta_train, mlp, pool_sampler, protonet
from metajax.training.checkpoint import checkpoint_manager, restore_state, save_state
from metajax.training.trainer import NonFiniteError, init_state


@pytest.fixture(scope="module")
def samplers():
    rng = np.random.default_rng(0)
    # Class c is centred at a random point: learnable, so the runs' metrics move.
    centres = rng.normal(size=(10, 1, 6)).astype(np.float32)
    pool = centres + 0.5 * rng.normal(size=(10, 12, 6)).astype(np.float32)
    return (
        pool_sampler(pool[:7], ways=3, shots=2, queries=3),
        pool_sampler(pool[7:], ways=3, shots=2, queries=3),
    )


def leaves(tree):
    """Every array of ``tree``, typed PRNG keys as their raw data."""
    raw = jax.tree.map(
        lambda a: (
            jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a
        ),
        tree,
    )
    return [np.asarray(a) for a in jax.tree.leaves(jax.device_get(raw))]


def no_wall(history):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in history]


def run(samplers, steps, folder=None, **kw):
    train, val = samplers
    kw.setdefault("validation", (val, 10))
    return meta_train(
        protonet(mlp(hidden=(16,))),
        train,
        optax.adam(1e-2),
        steps=steps,
        key=jax.random.key(3),
        tasks=2,
        log_every=5,
        progress=False,
        validation_episodes=10,
        checkpoint_dir=folder,
        **{"checkpoint_every": 5 if folder else None, **kw},
    )


def steps_on_disk(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def test_keeps_the_last_n_and_the_best_on_validation(samplers, tmp_path):
    _, history = run(samplers, 60, tmp_path, keep=2)
    scored = [r for r in history if "val_accuracy" in r]
    top = max(r["val_accuracy"] for r in scored)
    best = [r["step"] for r in scored if r["val_accuracy"] == top][-1]  # ties: the later
    assert steps_on_disk(tmp_path) == sorted({55, 60, best})
    # The best checkpoint restores to the parameters that scored best.
    manager = checkpoint_manager(tmp_path)
    learner = protonet(mlp(hidden=(16,)))
    template = init_state(learner, optax.adam(1e-2), samplers[0], jax.random.key(0))
    state, meta, step = restore_state(manager, template, step=best)
    manager.close()
    assert step == best and int(state.step) == best and meta["best"]["step"] == best


def test_resume_continues_exactly(samplers, tmp_path):
    whole, history = run(samplers, 40)
    run(samplers, 20, tmp_path)  # stopped after step 20 (the CLI test kills one for real)
    resumed, resumed_history = run(samplers, 40, tmp_path, resume=True)
    assert all(np.array_equal(a, b) for a, b in zip(leaves(whole), leaves(resumed), strict=True))
    assert no_wall(history) == no_wall(resumed_history)
    assert jax.random.key_data(whole.key).tolist() == jax.random.key_data(resumed.key).tolist()


def test_each_checkpoint_keeps_the_history_of_its_own_step(samplers, tmp_path, monkeypatch):
    """orbax writes the metadata in the background: a checkpoint must get its own copy of
    the history, not the live list that later steps append to (a resume then logged the
    steps after it twice, when the write lagged behind training)."""
    from metajax.training import trainer

    handed = []
    original = trainer.save_state

    def recording(manager, step, state, meta, *args, **kwargs):
        handed.append((step, meta))
        return original(manager, step, state, meta, *args, **kwargs)

    monkeypatch.setattr(trainer, "save_state", recording)
    run(samplers, 20, tmp_path)
    assert [step for step, _ in handed] == [5, 10, 15, 20]
    for step, meta in handed:  # read after the run: what a lagging write would serialise
        assert meta["history"][-1]["step"] == step, (step, meta["history"])
        assert meta["best"] is None or meta["best"]["step"] <= step


def test_a_checkpoint_cut_short_is_never_restored(samplers, tmp_path):
    whole, _ = run(samplers, 30)
    run(samplers, 20, tmp_path)
    assert steps_on_disk(tmp_path)[-1] == 20
    # A write killed midway: orbax's temporary folder, never renamed to its step.
    partial = tmp_path / "25.orbax-checkpoint-tmp-1234567"
    shutil.copytree(tmp_path / "20", partial)
    for f in sorted(partial.rglob("*")):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    # A finished checkpoint damaged afterwards (a bad disk): skipped with a warning.
    for f in (tmp_path / "20").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(b"\0garbage")
    with pytest.warns(UserWarning, match="checkpoint 20 .* is unreadable"):
        resumed, history = run(samplers, 30, tmp_path, resume=True)
    # It went on from step 15, the newest good one, and still ends where a whole run does.
    assert [r["step"] for r in history] == [5, 10, 15, 20, 25, 30]
    assert all(np.array_equal(a, b) for a, b in zip(leaves(whole), leaves(resumed), strict=True))


def test_no_readable_checkpoint_is_a_clear_error(samplers, tmp_path):
    run(samplers, 5, tmp_path, validation=None)
    for f in (tmp_path / "5").rglob("*"):
        if f.is_file():
            f.write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no readable checkpoint"):
        run(samplers, 10, tmp_path, validation=None, resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        run(samplers, 10, None, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be a multiple of log_every=5"):
        run(samplers, 10, tmp_path / "other", checkpoint_every=7)


def poisoned_at(step: int) -> optax.GradientTransformation:
    """Adam whose update at ``step`` (1-based) is NaN: a planted divergence."""
    adam = optax.adam(1e-2)

    def init(params):
        return (jnp.zeros((), jnp.int32), adam.init(params))

    def update(grads, state, params=None):
        count, inner = state
        updates, inner = adam.update(grads, inner, params)
        poison = jnp.where(count + 1 == step, jnp.nan, 1.0)
        return jax.tree.map(lambda u: u * poison, updates), (count + 1, inner)

    return optax.GradientTransformation(init, update)


def test_a_planted_nan_stops_with_the_step_and_learner_keeping_the_good_checkpoint(
    samplers, tmp_path
):
    train, _ = samplers
    learner = protonet(mlp(hidden=(16,)))
    kw = dict(steps=40, key=jax.random.key(3), tasks=2, log_every=5, progress=False)
    planted = r"meta-training of protonet stopped at meta-step 13"
    with pytest.raises(NonFiniteError, match=planted) as err:
        meta_train(
            learner,
            train,
            poisoned_at(13),
            checkpoint_dir=tmp_path,
            checkpoint_every=5,
            metrics_path=tmp_path / "metrics.jsonl",
            **kw,
        )
    assert "the last good checkpoint is step 10" in str(err.value)
    assert steps_on_disk(tmp_path) == [5, 10]
    manager = checkpoint_manager(tmp_path)
    template = init_state(learner, poisoned_at(13), train, jax.random.key(0))
    state, _, step = restore_state(manager, template)
    manager.close()
    # Intact and exactly the parameters of a clean run at step 10.
    clean, _ = meta_train(learner, train, poisoned_at(10**6), **{**kw, "steps": 10})
    assert step == 10 and all(np.isfinite(a).all() for a in leaves(state.params))
    pairs = zip(leaves(state.params), leaves(clean.params), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)
    logged = [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")]
    assert logged == [5, 10]


# Long enough that a run is still training when the test kills it after its second
# checkpoint (28 checkpoints and the final evaluation to go), short enough to run whole twice.
CLI_STEPS = 300


def cli(out: Path, *extra: str) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "metajax",
        "train",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--steps",
        str(CLI_STEPS),
        "--tasks",
        "2",
        "--log-every",
        "10",
        "--checkpoint-every",
        "10",
        "--eval-episodes",
        "20",
        "--no-progress",
        "--out-dir",
        str(out),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_sigkill_then_resume_ends_like_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    process = cli(killed)
    checkpoints = killed / "checkpoints"
    deadline = time.monotonic() + 300
    # Kill it mid-run, once a few checkpoints are down (one may be mid-write).
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoints.is_dir() and len(steps_on_disk(checkpoints)) >= 2:
            time.sleep(0.05)
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "params.msgpack").exists()
    resumed = cli(killed, "--resume")
    out, errors = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, errors[-3000:]
    whole = cli(tmp_path / "whole")
    _, errors = whole.communicate(timeout=600)
    assert whole.returncode == 0, errors[-3000:]

    def read(run: Path):
        metrics = [json.loads(line) for line in open(run / "metrics.jsonl")]
        return (
            (run / "params.msgpack").read_bytes(),
            no_wall(metrics),
            json.loads((run / "eval.json").read_text()),
        )

    params_a, metrics_a, eval_a = read(killed)
    params_b, metrics_b, eval_b = read(tmp_path / "whole")
    assert params_a == params_b
    assert metrics_a == metrics_b and [m["step"] for m in metrics_a][-1] == CLI_STEPS
    assert eval_a == eval_b


def test_cli_refuses_to_overwrite_or_change_a_run(tmp_path, capsys):
    from metajax.cli import main

    out = tmp_path / "run"
    base = ["train", "--dataset", "digits", "--model", "mlp", "--steps", "20", "--log-every",
            "10", "--checkpoint-every", "10", "--eval-episodes", "10", "--no-progress",
            "--out-dir", str(out)]  # fmt: skip
    assert main(base) == 0
    capsys.readouterr()
    assert main(base) == 2
    assert "already holds checkpoints of a run: pass --resume" in capsys.readouterr().err
    assert main([*base, "--resume", "--ways", "4"]) == 2
    assert "--resume continues the run saved in" in capsys.readouterr().err
    # Resuming a finished run with more steps trains on.
    assert main([*base[:-2], "--out-dir", str(out), "--resume", "--steps", "30"]) == 0
    metrics = [json.loads(line)["step"] for line in open(out / "metrics.jsonl")]
    assert metrics == [10, 20, 30]


def test_cli_validates_devices_and_tasks(capsys):
    from metajax.cli import main

    assert main(["train", "--devices", "2", "--no-progress"]) == 2
    assert "devices must be an integer in [1, 1]" in capsys.readouterr().err
    assert main(["train", "--validate-every", "50", "--no-progress"]) == 2
    assert "--validate-every needs a dataset with val classes" in capsys.readouterr().err


def test_save_state_round_trips_typed_keys_and_optimizer_states(tmp_path):
    learner = protonet(mlp(hidden=(4,)))
    sampler = pool_sampler(np.ones((4, 5, 3), np.float32), ways=2, shots=1, queries=1)
    state = init_state(learner, optax.chain(optax.clip(1.0), optax.adam(1e-3)), sampler,
                       jax.random.key(5))  # fmt: skip
    manager = checkpoint_manager(tmp_path)
    save_state(manager, 7, state, {"note": "x"})
    manager.wait_until_finished()
    back, meta, step = restore_state(manager, state)
    manager.close()
    assert step == 7 and meta == {"note": "x"}
    assert jax.tree.structure(back) == jax.tree.structure(state)
    assert jax.random.key_data(back.key).tolist() == jax.random.key_data(state.key).tolist()
    with pytest.raises(ValueError, match="keep must be an integer >= 1"):
        checkpoint_manager(tmp_path, keep=0)
    with pytest.raises(ValueError, match="best_mode must be 'max' or 'min'"):
        checkpoint_manager(tmp_path, best_metric="val_accuracy", best_mode="up")


def test_cli_validates_keeps_the_best_and_tests_with_it(data_dir, tmp_path, capsys):
    from metajax.cli import main

    out = tmp_path / "run"
    # An MLP and few queries: what is checked is the checkpoint bookkeeping, not the backbone.
    argv = ["train", "--dataset", "omniglot", "--data-dir", str(data_dir), "--no-download",
            "--model", "mlp", "--queries", "5", "--steps", "20", "--log-every", "10",
            "--validate-every", "10", "--checkpoint-every", "10", "--val-episodes", "10",
            "--eval-episodes", "10", "--keep", "1", "--no-progress",
            "--out-dir", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert all("val_accuracy" in m for m in metrics)
    top = max(m["val_accuracy"] for m in metrics)
    best = [m["step"] for m in metrics if m["val_accuracy"] == top][-1]
    assert f"best meta-validation val_accuracy {top:.4f} at step {best}" in printed
    # The latest checkpoint and the best one survive keep=1.
    assert steps_on_disk(out / "checkpoints") == sorted({20, best})
    assert (out / "params_best.msgpack").is_file()
