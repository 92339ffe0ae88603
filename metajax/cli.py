"""``metajax train`` and ``metajax eval`` (also ``python -m metajax``).

``metajax train`` meta-trains a learner on the meta-train classes of a dataset,
saves the run (config, parameters, metrics) in ``--out-dir``, then meta-tests on
unseen classes and prints the mean accuracy with its 95% confidence interval.
With no options it runs Prototypical Networks on scikit-learn's digits, which
needs no download and finishes in about a minute on two CPU cores.

The learners, their options and defaults come from :mod:`metajax.core.registry`.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import jax

import metajax.learners  # registers every learner (and binds metajax)
from metajax import datasets
from metajax.core import io, registry
from metajax.core.episodes import pool_sampler
from metajax.training import checkpoint, distributed
from metajax.training.trainer import NonFiniteError, evaluate, meta_train

PAPERS = "; ".join(f"{s.name} ({s.paper})" for s in registry.specs())
CI = "95% CI"  # description strings are not %-formatted; help strings are
# Keys of config.json that may differ on --resume: the run is the same without them.
UNCHECKED = ("steps", "versions", "data_dir")
DEPS = ("jax", "jaxlib", "flax", "optax")  # their versions go into config.json


def _number(kind: type, low: float, *, open_: bool = False):
    """An argparse type: a finite ``kind`` >= ``low`` (> ``low`` if ``open_``)."""
    bound = f"{'>' if open_ else '>='} {low}"

    def parse(text: str):
        value = kind(text)
        if math.isfinite(value) and (value > low or (value == low and not open_)):
            return value
        raise argparse.ArgumentTypeError(f"must be a finite {kind.__name__} {bound}, got {text}")

    return parse


POSITIVE = _number(int, 1)
EPISODES = _number(int, 2)  # a confidence interval needs two episodes
TRAIN = (  # (flag, type, default, help) of `metajax train`
    ("--learner", registry.names(), "protonet", f"the meta-learning method: {PAPERS}"),
    ("--dataset", str, "digits", f"one of {', '.join((*datasets.NAMES, *registry.REGRESSION))}"),
    ("--model", ("auto", *registry.MODELS), "auto", "backbone: conv4 (Vinyals/Snell/Finn), conv2 "
     "(its first two blocks), mlp, or auto = conv4 for images >= 16x16, conv2 below, mlp else"),
    ("--ways", POSITIVE, None, "classes per meta-training episode (default: 5; Snell et al. "
     "train Omniglot with 60; not for regression)"),
    ("--shots", POSITIVE, 1, "support examples per class"),
    ("--queries", POSITIVE, 10, "query examples per class at training"),
    *((f"--test-{k}", POSITIVE, None, f"{k} at meta-test (default: --{k})")
      for k in ("ways", "shots", "queries")),
    ("--steps", POSITIVE, 1000, "meta-training steps"),
    ("--tasks", POSITIVE, 1, "tasks per meta-step, the meta-batch (1 as Snell et al.)"),
    ("--lr", _number(float, 0, open_=True), None, "outer learning rate: Adam's (default 1e-3), "
     "or for reptile SGD's epsilon, annealed linearly to 0 (default 1.0)"),
    *((f"--{k.replace('_', '-')}", _number(o.kind, o.low, open_=o.low_open), None,
       f"{o.help} (default: the paper's; for "
       f"{', '.join(s.name for s in registry.specs() if k in s.options)})")
      for k, o in registry.OPTIONS.items()),
    ("--decay-every", POSITIVE, 2000, "halve the learning rate every this many steps"),
    ("--out-dir", str, None, "where the run is saved (default: runs/<dataset>-<learner>-<time>)"),
    ("--devices", POSITIVE, None, "devices to split each meta-batch's tasks across; --tasks "
     "must be a multiple (default: every device JAX sees, on every host)"),
    ("--checkpoint-every", POSITIVE, 500, "meta-steps between orbax checkpoints in <out-dir>/"
     "checkpoints, a multiple of --log-every; also at each validation and the end"),
    ("--keep", POSITIVE, 3, "recent checkpoints to keep"),
    ("--resume", None, False, "continue the run in --out-dir from its newest checkpoint, exactly"),
    ("--validate-every", POSITIVE, None, "meta-validate every this many steps on the val classes "
     "and keep the best checkpoint; a multiple of --log-every (default: none)"),
    ("--val-episodes", EPISODES, 200, "episodes per validation pass"),
    ("--log-every", POSITIVE, 50, "meta-steps per line of metrics.jsonl and finiteness check"),
    ("--coordinator-address", str, None, "multi-host: the coordinator's host:port (all three "
     "multi-host options or none; see jax.distributed.initialize)"),
    ("--num-processes", int, None, "multi-host: the number of processes"),
    ("--process-id", int, None, "multi-host: this process's index"),
)  # fmt: skip
EVAL = (  # (flag, type, default, help) of `metajax eval`, after run_dir
    *((f"--{k}", POSITIVE, None, f"default: the run's test {k}")
      for k in ("ways", "shots", "queries")),
    ("--split", str, "test", "class split to test on"),
    ("--last", None, False, "score params.msgpack (the last step), not params_best.msgpack "
     "(the best validated one, which train scored)"),
)  # fmt: skip
DATA = (  # options of both commands
    ("--data-dir", str, None, "data root holding e.g. omniglot/ (default: the run's for eval, "
     "else $METAJAX_DATA_DIR)"),
    ("--no-download", None, False, "never fetch missing data from its public home"),
    ("--seed", int, 0, "PRNG seed of the run"),
    ("--eval-episodes", EPISODES, 600, f"meta-test episodes (>= 2) for the mean and {CI}"),
    ("--no-progress", None, False, "hide the progress bar"),
)  # fmt: skip


def _add(parser: argparse.ArgumentParser, options) -> None:
    for flag, kind, default, text in options:
        if kind is None:
            parser.add_argument(flag, action="store_true", help=text)
            continue
        choices = kind if isinstance(kind, tuple) else None
        shown = f" (default: {default})" if default is not None and "default" not in text else ""
        parser.add_argument(
            flag, type=None if choices else kind, choices=choices, default=default,
            help=(text + shown).replace("%", "%%"),
        )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metajax", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="meta-train a learner, save it, then meta-test it",
        description="Meta-train on the meta-train classes, save the run, then report the "
        f"meta-test accuracy (mean and {CI}) on classes never seen in training.")  # fmt: skip
    _add(train, TRAIN + DATA)
    ev = sub.add_parser("eval", help="meta-test a saved run",
        description="Load a run saved by `metajax train` and report its meta-test accuracy "
        f"(mean and {CI}), optionally at other ways/shots than it was trained with.")  # fmt: skip
    ev.add_argument("run_dir", help="the --out-dir of a `metajax train` run")
    _add(ev, EVAL + DATA)
    return parser


def _load(name: str, data_dir, args):
    if name in registry.REGRESSION:
        return None
    return datasets.load(name, data_dir=data_dir, download=not args.no_download)


def _sampler(dataset, split: str, *, ways: int, shots: int, queries: int):
    if dataset is None:
        return datasets.sinusoid_sampler(shots=shots, queries=queries)
    return pool_sampler(dataset.pool(split), ways=ways, shots=shots, queries=queries)


def _test(learner, config, dataset, params, args, *, ways, shots, queries, split="test"):
    sampler = _sampler(dataset, split, ways=ways, shots=shots, queries=queries)
    key = jax.random.key(args.seed + 1)
    result = evaluate(learner, params, sampler, key=key, episodes=args.eval_episodes)
    setting = f"K={shots}" if dataset is None else f"{ways}-way {shots}-shot"
    for k in result.mean:
        scale, unit = (100, "%") if k == "accuracy" else (1, "")
        print(
            f"meta-test {k} on {split} ({setting}, {result.episodes} episodes): "
            f"{scale * result.mean[k]:.2f} ± {scale * result.ci95[k]:.2f}{unit} ({CI})"
        )
    return {
        "dataset": config["dataset"], "learner": config["learner"], "split": split,
        "setting": f"K={shots}" if dataset is None else f"{ways}w{shots}s{queries}q",
        "episodes": result.episodes, **result.mean,
        **{f"{k}_ci95": v for k, v in result.ci95.items()},
    }  # fmt: skip


def _check_resume(out: Path, config: dict, resume: bool) -> None:
    """A resumed run must be the same run; a fresh one must not overwrite checkpoints."""
    folder = out / "checkpoints"
    if not resume and folder.is_dir() and any(folder.iterdir()):
        raise ValueError(f"--out-dir {out} already holds checkpoints of a run: pass --resume to "
                         "continue it, or choose another --out-dir")  # fmt: skip
    saved = out / "config.json"
    before = json.loads(saved.read_text()) if resume and saved.is_file() else config
    for k in sorted((set(before) | set(config)) - set(UNCHECKED)):
        if before.get(k) != config.get(k):
            raise ValueError(f"--resume continues the run saved in {out}, but {k} differs: "
                             f"{before.get(k)!r} there, {config.get(k)!r} now")  # fmt: skip


def _train(args) -> dict:
    if args.coordinator_address is not None or args.num_processes is not None:
        distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
    spec, ways = registry.get(args.learner), ("ways", "test_ways")
    given = {k: getattr(args, k) for k in registry.OPTIONS if getattr(args, k) is not None}
    applies = {*spec.options, *(() if args.dataset in registry.REGRESSION else ways)}
    unused = sorted({*given, *(k for k in ways if getattr(args, k))} - applies)
    if unused:
        where = args.dataset if unused[0] in ways else spec.name
        raise ValueError(f"--{unused[0].replace('_', '-')} does not apply to {where}")
    data_dir = datasets.resolve_data_dir(args.data_dir)
    data_dir = None if data_dir is None else data_dir.resolve()
    dataset = _load(args.dataset, data_dir, args)
    pool = None if dataset is None else dataset.pool("train")
    config = registry.run_config(
        spec.name, dataset=args.dataset, ways=args.ways or 5, shots=args.shots,
        model=registry.auto_model(pool) if args.model == "auto" else args.model,
        queries=args.queries, seed=args.seed, steps=args.steps, decay_every=args.decay_every,
        lr=args.lr, test_ways=args.test_ways, test_shots=args.test_shots,
        test_queries=args.test_queries, **registry.pool_settings(pool), **given,
    )  # fmt: skip
    versions = {"metajax": metajax.__version__, **{p: metadata.version(p) for p in DEPS}}
    config.update(tasks=args.tasks, data_dir=data_dir and str(data_dir), versions=versions)
    test = {k: config[f"test_{k}"] for k in ("ways", "shots", "queries")}
    train = {k: config[k] for k in ("ways", "shots", "queries")}
    sampler = _sampler(dataset, "train", **train)
    _sampler(dataset, "test", **test)  # impossible test settings fail before training
    learner = spec.build(config, pool)
    mesh = distributed.task_mesh(args.devices)
    distributed.check_tasks(args.tasks, mesh, name="--tasks")
    if args.validate_every and (dataset is None or "val" not in dataset.splits):
        has = "none" if dataset is None else ", ".join(dataset.splits)
        raise ValueError(
            f"--validate-every needs a dataset with val classes; {args.dataset} has {has}"
        )
    validation = args.validate_every and (_sampler(dataset, "val", **train), args.validate_every)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out_dir or f"runs/{args.dataset.replace(':', '-')}-{spec.name}-{stamp}")
    _check_resume(out, config, args.resume)
    out.mkdir(parents=True, exist_ok=True)
    io.write_atomic(out / "config.json", (json.dumps(config, indent=2) + "\n").encode())
    result = meta_train(
        learner, sampler, spec.optimizer(config), steps=args.steps,
        key=jax.random.key(args.seed), tasks=args.tasks, metrics_path=out / "metrics.jsonl",
        log_every=args.log_every, progress=not args.no_progress, validation=validation,
        validation_episodes=args.val_episodes, mesh=mesh, checkpoint_dir=out / "checkpoints",
        checkpoint_every=args.checkpoint_every, keep=args.keep, resume=args.resume,
        name=spec.name,
    )  # fmt: skip
    params = result.state.params
    checkpoint.save_params(out / "params.msgpack", params)
    best = result.best
    if best is not None:  # model selection on the meta-validation classes, as in the papers
        print(f"best meta-validation {best.metric} {best.value:.4f} at step {best.step}")
        params = best.params
        checkpoint.save_params(out / "params_best.msgpack", params)
    print(f"saved the run in {out}")
    # Sequence learners are sized by the episode's length: rebuilt at the test's.
    learner = spec.build({**config, "shots": test["shots"], "queries": test["queries"]}, pool)
    # Tested as `metajax eval` tests the saved file: host arrays, not the training mesh's,
    # so that both compile the same program (one persistent-cache entry, not two).
    summary = _test(learner, config, dataset, jax.device_get(params), args, **test)
    io.write_atomic(out / "eval.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _eval(args) -> dict:
    run = Path(args.run_dir)
    if not (run / "config.json").is_file():
        raise ValueError(
            f"run_dir must be a folder saved by `metajax train`; {run} has no config.json"
        )
    config = json.loads((run / "config.json").read_text())
    if registry.is_regression(config) and args.ways is not None:
        raise ValueError(f"--ways does not apply to {config['dataset']}")
    dataset = _load(config["dataset"], args.data_dir or config.get("data_dir"), args)
    ways = args.ways or config["test_ways"]
    shots = args.shots or config["test_shots"]
    queries = args.queries or config["test_queries"]
    registry.check_setting(config, ways, shots, prefix="--")
    pool = None if dataset is None else dataset.pool("train")
    learner = registry.get(config["learner"]).build(
        {**config, "shots": shots, "queries": queries}, pool
    )
    sampler = _sampler(dataset, args.split, ways=ways, shots=shots, queries=queries)
    template = learner.init(jax.random.key(0), sampler.sample(jax.random.key(0), sampler.data))
    # The parameters that train scored: the best validated ones, if it validated.
    path = run / "params_best.msgpack"
    path = path if path.is_file() and not args.last else run / "params.msgpack"
    params = checkpoint.load_params(path, template)
    return _test(learner, config, dataset, params, args, ways=ways, shots=shots, queries=queries,
                 split=args.split)  # fmt: skip


def _stop_on_sigterm(signum, frame):
    # A scheduler's SIGTERM unwinds like Ctrl-C, so pending checkpoint writes finish.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if main_thread else None
    try:
        (_train if args.command == "train" else _eval)(args)
    except (NonFiniteError, ValueError) as err:
        # Bad input is the user's to fix (2), a diverged run the setting's (3): say what,
        # without a traceback into library code.
        print(f"metajax {args.command}: error: {err}", file=sys.stderr)
        return 3 if isinstance(err, NonFiniteError) else 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
