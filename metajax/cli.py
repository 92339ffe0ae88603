"""``metajax train`` and ``metajax eval`` (also ``python -m metajax``).

``metajax train`` meta-trains a learner on the meta-train classes of a dataset,
saves the run (config, parameters, metrics) in ``--out-dir``, then meta-tests on
unseen classes and prints the mean accuracy with its 95% confidence interval.
With no options it runs Prototypical Networks on scikit-learn's digits, which
needs no download and finishes in about a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import optax

from metajax import datasets
from metajax.core.episodes import pool_sampler
from metajax.datasets import sinusoid_sampler
from metajax.learners.metric.idemenet import idemenet
from metajax.learners.metric.matching import matching_networks
from metajax.learners.metric.protonet import protonet
from metajax.learners.metric.relation import relation_embedding, relation_module, relation_network
from metajax.learners.metric.siamese import siamese
from metajax.learners.metric.tapnet import tapnet
from metajax.learners.model.mann import lstm_baseline, mann
from metajax.learners.model.metanet import meta_networks
from metajax.learners.model.snail import snail
from metajax.learners.optimization.anil import anil
from metajax.learners.optimization.finetune import finetune
from metajax.learners.optimization.imaml import imaml
from metajax.learners.optimization.maml import fomaml, maml
from metajax.learners.optimization.metasgd import metasgd
from metajax.learners.optimization.reptile import reptile
from metajax.nets.backbones import conv4, mlp
from metajax.training import checkpoint, distributed
from metajax.training.distributed import check_tasks, task_mesh
from metajax.training.trainer import NonFiniteError, evaluate, meta_train, validation_metric

# Learners whose network ends in an N-way head: they train and test at the same ways.
HEAD_LEARNERS = ("maml", "fomaml", "imaml", "reptile", "metasgd", "anil", "finetune")
# Metric-based learners: compare queries with the support set, so any ways at test.
METRIC_LEARNERS = ("protonet", "matching", "relation", "siamese", "tapnet", "idemenet")
# Model-based learners whose output has one unit per way: same ways at train and test.
MODEL_LEARNERS = ("mann", "lstm", "snail", "metanet")
LEARNERS = (*METRIC_LEARNERS, *HEAD_LEARNERS, *MODEL_LEARNERS)
FIXED_WAYS = (*HEAD_LEARNERS, *MODEL_LEARNERS)
# IDeMe-Net's gallery: at most this many meta-train images, one per class first.
GALLERY_SIZE = 2048
MODELS = ("auto", "conv4", "conv2", "mlp")
REGRESSION = ("sinusoid",)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _gallery(pool, seed: int):
    """IDeMe-Net's gallery: up to ``GALLERY_SIZE`` meta-train images, spread over the classes."""
    rng = np.random.default_rng(seed)
    classes = rng.permutation(pool.shape[0])[:GALLERY_SIZE]
    per_class = max(1, min(pool.shape[1], GALLERY_SIZE // len(classes)))
    examples = np.stack([rng.permutation(pool.shape[1])[:per_class] for _ in classes])
    return np.asarray(pool[classes[:, None], examples]).reshape(-1, *pool.shape[2:])


def _make_learner(config: dict, *, shots=None, queries=None, train_pool=None):
    """The learner a saved config describes; inner-loop options left None keep paper defaults.

    ``shots`` and ``queries`` are the episodes it will see (the sequence learners' length
    depends on them); ``train_pool`` gives IDeMe-Net its gallery of meta-train images.
    """
    name = config["learner"]
    shots = shots or config["shots"]
    queries = queries or config["queries"]
    if name not in LEARNERS:
        raise ValueError(f"learner must be one of {LEARNERS}, got {name!r}")
    if config["model"] not in MODELS[1:]:
        raise ValueError(f"model must be one of {MODELS[1:]}, got {config['model']!r}")
    outputs = None
    if name in HEAD_LEARNERS and name != "anil":
        outputs = 1 if config["dataset"] in REGRESSION else config["ways"]
    hidden = (40, 40) if config["dataset"] in REGRESSION else (128, 128)
    model = {
        "conv4": lambda: conv4(outputs=outputs),
        "conv2": lambda: conv4(blocks=2, outputs=outputs),
        "mlp": lambda: mlp(hidden=hidden, outputs=outputs),
    }[config["model"]]()
    inner = {
        k: config.get(k)
        for k in ("inner_lr", "inner_steps", "test_inner_steps", "proximal", "cg_steps")
        if config.get(k) is not None
    }
    allowed = {
        "protonet": (),
        "matching": (),
        "relation": (),
        "siamese": (),
        "tapnet": (),
        "idemenet": (),
        "mann": (),
        "lstm": (),
        "snail": (),
        "metanet": (),
        "maml": ("inner_lr", "inner_steps", "test_inner_steps"),
        "fomaml": ("inner_lr", "inner_steps", "test_inner_steps"),
        "imaml": ("inner_lr", "inner_steps", "test_inner_steps", "proximal", "cg_steps"),
        "reptile": ("inner_steps", "test_inner_steps"),
        "metasgd": ("inner_steps", "test_inner_steps"),
        "anil": ("inner_lr", "inner_steps", "test_inner_steps"),
        "finetune": ("inner_lr", "test_inner_steps"),
    }[name]
    unused = sorted(set(inner) - set(allowed))
    if unused:
        raise ValueError(f"--{unused[0].replace('_', '-')} does not apply to {name}")
    if name == "protonet":
        return protonet(model)
    if name in ("mann", "lstm"):
        # Santoro et al.'s sequence: every support and query example, labels one step late.
        factory = mann if name == "mann" else lstm_baseline
        return factory(ways=config["ways"], instances=shots + queries)
    if name == "snail":
        return snail(ways=config["ways"], shots=shots, embedding=model)
    if name == "metanet":
        blocks = {"conv4": 4, "conv2": 2, "mlp": 0}[config["model"]]
        return meta_networks(ways=config["ways"], blocks=blocks)
    if name == "idemenet":
        if train_pool is None or train_pool.ndim != 5:
            raise ValueError(
                "learner idemenet deforms images: it needs an image dataset, "
                f"got dataset {config['dataset']!r}"
            )
        # The deformation encoder pools by 2 per block: at most log2 of the image side.
        side = min(train_pool.shape[2:4])
        gallery = _gallery(train_pool, config["seed"])
        return idemenet(
            gallery=gallery,
            neighbours=min(15, len(gallery)),
            # Ranking the whole gallery would embed it every step; the benchmark's subset.
            candidates=min(128, len(gallery)),
            model=model,
            deformation_blocks=max(1, min(4, int(np.log2(side)))),
        )
    if name == "matching":
        return matching_networks(model)
    if name == "siamese":
        # Verification pairs from every (support, query) pair of an ordinary episode.
        return siamese(model)
    if name == "relation":
        # Sung et al.'s f keeps spatial maps for g's convolutions; its smaller variants
        # fit the 8x8 digits (conv2) and vectors (mlp, with an MLP relation module).
        if config["model"] == "conv4":
            return relation_network()
        if config["model"] == "conv2":
            return relation_network(relation_embedding(pooled=1), relation_module(blocks=1))
        return relation_network(model, relation_module(blocks=0))
    if name == "tapnet":
        # TapNet brings its own encoder (grouped 1-D convolutions and an LSTM), sized by
        # the series; shared attention, since CLI episodes shuffle the labels.
        if "series" not in config:
            raise ValueError(
                "learner tapnet needs a multivariate time-series dataset (uea:NAME), "
                f"got dataset {config['dataset']!r}"
            )
        return tapnet(**config["series"], seed=config["seed"])
    if name == "anil":
        return anil(
            model, outputs=1 if config["dataset"] in REGRESSION else config["ways"], **inner
        )
    factory = {
        "maml": maml,
        "fomaml": fomaml,
        "imaml": imaml,
        "reptile": reptile,
        "metasgd": metasgd,
        "finetune": finetune,
    }[name]
    return factory(model, **inner)


def _optimizer(config: dict):
    if config["learner"] == "reptile":
        # Nichol et al.: the outer step is SGD at rate epsilon, annealed linearly to zero.
        return optax.sgd(optax.linear_schedule(config["lr"] or 1.0, 0.0, config["steps"]))
    schedule = optax.exponential_decay(
        config["lr"] or 1e-3, config["decay_every"], 0.5, staircase=True
    )
    if config["learner"] in MODEL_LEARNERS:
        # Recurrent and fast-weight learners can spike; Munkhdalai & Yu's code clips at 10.
        return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule))
    return optax.adam(schedule)


def _resolve_model(model: str, pool) -> str:
    if model != "auto":
        return model
    if pool is None or pool.ndim != 5:
        return "mlp"
    # Conv-4 needs images of at least 16x16 for its four poolings; its first two
    # blocks fit small images such as the 8x8 digits (71% against an MLP's 60% there).
    side = min(pool.shape[2:4])
    return "conv4" if side >= 16 else "conv2" if side >= 4 else "mlp"


def _sampler(config: dict, dataset, split: str, *, ways: int, shots: int, queries: int):
    if config["dataset"] in REGRESSION:
        return sinusoid_sampler(shots=shots, queries=queries)
    return pool_sampler(dataset.pool(split), ways=ways, shots=shots, queries=queries)


def _load_dataset(name: str, args):
    if name in REGRESSION:
        return None
    return datasets.load(name, data_dir=args.data_dir, download=not args.no_download)


def _add_data_options(p: argparse.ArgumentParser):
    p.add_argument(
        "--data-dir",
        default=None,
        help="data root holding e.g. omniglot/ (default: $METAJAX_DATA_DIR)",
    )
    p.add_argument(
        "--no-download", action="store_true", help="never fetch missing data from its public home"
    )
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of the run (default: 0)")
    p.add_argument(
        "--eval-episodes",
        type=_positive,
        default=600,
        help="meta-test episodes for the mean and 95%% CI (default: 600)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metajax", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="meta-train a learner, save it, then meta-test it",
        description="Meta-train on the meta-train classes, save the run, then report the "
        "meta-test accuracy (mean and 95%% CI) on classes never seen in training.",
    )
    train.add_argument(
        "--learner",
        choices=LEARNERS,
        default="protonet",
        help="the meta-learning method (default: protonet): protonet (Snell 2017), matching "
        "(Vinyals 2016), relation (Sung 2018), siamese (Koch 2015), tapnet (Zhang 2020; "
        "uea:NAME data), idemenet (Chen 2019), mann and lstm (Santoro 2016), snail (Mishra "
        "2018), metanet (Munkhdalai 2017), maml and "
        "fomaml (Finn 2017), imaml (Rajeswaran 2019), reptile (Nichol 2018), metasgd (Li 2017), "
        "anil (Raghu 2020), finetune (pretrain + fine-tune baseline)",
    )
    train.add_argument(
        "--dataset",
        default="digits",
        help=f"one of {', '.join((*datasets.NAMES, *REGRESSION))} (default: digits, offline)",
    )
    train.add_argument(
        "--model",
        choices=MODELS,
        default="auto",
        help="backbone: conv4 (Vinyals/Snell/Finn), conv2 (its first two blocks), "
        "mlp, or auto = conv4 for images of at least 16x16, conv2 for smaller "
        "images, mlp for vectors (default: auto)",
    )
    train.add_argument(
        "--ways",
        type=_positive,
        default=5,
        help="classes per meta-training episode (default: 5; Snell et al. train Omniglot with 60)",
    )
    train.add_argument(
        "--shots", type=_positive, default=1, help="support examples per class (default: 1)"
    )
    train.add_argument(
        "--queries",
        type=_positive,
        default=10,
        help="query examples per class at training (default: 10)",
    )
    train.add_argument(
        "--test-ways",
        type=_positive,
        default=None,
        help="classes per meta-test episode (default: --ways)",
    )
    train.add_argument(
        "--test-shots",
        type=_positive,
        default=None,
        help="support examples per class at test (default: --shots)",
    )
    train.add_argument(
        "--test-queries",
        type=_positive,
        default=None,
        help="query examples per class at test (default: --queries)",
    )
    train.add_argument(
        "--steps", type=_positive, default=1000, help="meta-training steps (default: 1000)"
    )
    train.add_argument(
        "--tasks",
        type=_positive,
        default=1,
        help="tasks per meta-step, the meta-batch (default: 1, as Snell et al.)",
    )
    train.add_argument(
        "--lr",
        type=float,
        default=None,
        help="outer learning rate: Adam's (default 1e-3), or for reptile SGD's epsilon, "
        "annealed linearly to 0 (default 1.0)",
    )
    for flag, kind, text in (
        ("--inner-lr", float, "inner SGD step size"),
        ("--inner-steps", _positive, "inner steps at training"),
        ("--test-inner-steps", _positive, "inner steps at test"),
        ("--proximal", float, "iMAML's lambda"),
        ("--cg-steps", _positive, "iMAML's conjugate-gradient steps"),
    ):
        train.add_argument(
            flag, type=kind, default=None, help=f"{text} (default: the learner's paper default)"
        )
    train.add_argument(
        "--decay-every",
        type=_positive,
        default=2000,
        help="halve the learning rate every this many steps (default: 2000)",
    )
    train.add_argument(
        "--out-dir",
        default=None,
        help="where the run is saved (default: runs/<dataset>-<learner>-<time>)",
    )
    train.add_argument(
        "--devices",
        type=_positive,
        default=None,
        help="devices to split each meta-batch's tasks across; --tasks must be a multiple "
        "(default: every device JAX sees, on every host)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=_positive,
        default=500,
        help="meta-steps between orbax checkpoints in <out-dir>/checkpoints, a multiple of "
        "--log-every; also at each validation and at the end (default: 500)",
    )
    train.add_argument(
        "--keep", type=_positive, default=3, help="recent checkpoints to keep (default: 3)"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out-dir from its newest readable checkpoint, exactly",
    )
    train.add_argument(
        "--validate-every",
        type=_positive,
        default=None,
        help="meta-validate every this many steps on the dataset's val classes and keep the "
        "best checkpoint; a multiple of --log-every (default: no validation)",
    )
    train.add_argument(
        "--val-episodes",
        type=_positive,
        default=200,
        help="episodes per validation pass (default: 200)",
    )
    train.add_argument(
        "--log-every",
        type=_positive,
        default=50,
        help="meta-steps per line of metrics.jsonl and per finiteness check (default: 50)",
    )
    for flag, text in (
        ("--coordinator-address", "multi-host: the coordinator's host:port"),
        ("--num-processes", "multi-host: the number of processes"),
        ("--process-id", "multi-host: this process's index"),
    ):
        train.add_argument(
            flag,
            type=int if flag != "--coordinator-address" else str,
            default=None,
            help=f"{text} (all three, or none; see jax.distributed.initialize)",
        )
    _add_data_options(train)

    ev = sub.add_parser(
        "eval",
        help="meta-test a saved run",
        description="Load a run saved by `metajax train` and report its meta-test accuracy "
        "(mean and 95%% CI), optionally at other ways/shots than it was trained with.",
    )
    ev.add_argument("run_dir", help="the --out-dir of a `metajax train` run")
    ev.add_argument("--ways", type=_positive, default=None, help="default: the run's test ways")
    ev.add_argument("--shots", type=_positive, default=None, help="default: the run's test shots")
    ev.add_argument(
        "--queries", type=_positive, default=None, help="default: the run's test queries"
    )
    ev.add_argument("--split", default="test", help="class split to test on (default: test)")
    _add_data_options(ev)
    return parser


def _test(learner, params, dataset, config, args, *, ways, shots, queries, split="test"):
    sampler = _sampler(config, dataset, split, ways=ways, shots=shots, queries=queries)
    result = evaluate(
        learner, params, sampler, key=jax.random.key(args.seed + 1), episodes=args.eval_episodes
    )
    summary = {
        "dataset": config["dataset"],
        "learner": config["learner"],
        "split": split,
        "setting": f"{ways}w{shots}s{queries}q" if dataset is not None else f"K={shots}",
        "episodes": result.episodes,
        **{k: v for k, v in result.mean.items()},
        **{f"{k}_ci95": v for k, v in result.ci95.items()},
    }
    for k in result.mean:
        scale = 100 if k == "accuracy" else 1
        print(
            f"meta-test {k} on {split} ({_setting(config, ways, shots)}, "
            f"{result.episodes} episodes): "
            f"{scale * result.mean[k]:.2f} ± {scale * result.ci95[k]:.2f}"
            f"{'%' if k == 'accuracy' else ''} (95% CI)"
        )
    return summary


def _setting(config, ways, shots):
    if config["dataset"] in REGRESSION:
        return f"K={shots}"
    return f"{ways}-way {shots}-shot"


def _check_resume(out: Path, config: dict, resume: bool) -> None:
    """A resumed run must be the same run; a fresh one must not overwrite checkpoints."""
    saved = out / "config.json"
    has_checkpoints = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    if not resume:
        if has_checkpoints:
            raise ValueError(
                f"--out-dir {out} already holds checkpoints of a run: pass --resume to continue "
                "it, or choose another --out-dir"
            )
        return
    if not saved.is_file():
        return
    before = json.loads(saved.read_text())
    # Steps may grow on resume (train longer); everything else defines the run.
    changed = sorted(
        k for k in set(before) | set(config) if k != "steps" and before.get(k) != config.get(k)
    )
    if changed:
        k = changed[0]
        raise ValueError(
            f"--resume continues the run saved in {out}, but {k} differs: "
            f"{before.get(k)!r} there, {config.get(k)!r} now"
        )


def _best_params(directory: Path, state, history, metric):
    name, mode = metric
    scored = [r for r in history if name in r]
    sign = 1 if mode == "max" else -1
    # The last of equals, as the checkpoint manager keeps it.
    pick = max(reversed(scored), key=lambda r: sign * r[name])
    manager = checkpoint.checkpoint_manager(directory)
    try:
        best, _, _ = checkpoint.restore_state(manager, state, step=pick["step"])
    finally:
        manager.close()
    print(f"best meta-validation {name} {pick[name]:.4f} at step {pick['step']}")
    return best.params


def _train(args) -> dict:
    if args.coordinator_address is not None or args.num_processes is not None:
        distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
    dataset = _load_dataset(args.dataset, args)
    train_pool = None if dataset is None else dataset.pool("train")
    config = {
        k: getattr(args, k)
        for k in (
            "learner",
            "dataset",
            "ways",
            "shots",
            "queries",
            "steps",
            "tasks",
            "lr",
            "decay_every",
            "seed",
            "inner_lr",
            "inner_steps",
            "test_inner_steps",
            "proximal",
            "cg_steps",
        )
    }
    config["model"] = _resolve_model(args.model, train_pool)
    if args.dataset.startswith("uea:"):
        # [classes, examples, length, channels + mask]: see metajax.datasets.uea.
        config["series"] = {
            "channels": int(train_pool.shape[-1]) - 1,
            "length": int(train_pool.shape[-2]),
        }
    config["test_ways"] = args.test_ways or args.ways
    config["test_shots"] = args.test_shots or args.shots
    config["test_queries"] = args.test_queries or args.queries
    out = Path(
        args.out_dir
        or f"runs/{args.dataset.replace(':', '-')}-{args.learner}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if args.learner in FIXED_WAYS and config["test_ways"] != args.ways:
        raise ValueError(
            f"test_ways must equal ways={args.ways} for {args.learner}, whose head has one "
            f"output per way; got {config['test_ways']}"
        )
    if args.learner == "snail" and config["test_shots"] != args.shots:
        raise ValueError(
            f"test_shots must equal shots={args.shots} for snail, whose temporal convolutions "
            f"are sized by the sequence length; got {config['test_shots']}"
        )
    sampler = _sampler(
        config, dataset, "train", ways=args.ways, shots=args.shots, queries=args.queries
    )
    # Fail on impossible test settings before spending the training time.
    _sampler(
        config,
        dataset,
        "test",
        ways=config["test_ways"],
        shots=config["test_shots"],
        queries=config["test_queries"],
    )
    learner = _make_learner(config, train_pool=train_pool)
    mesh = task_mesh(args.devices)
    check_tasks(args.tasks, mesh, name="--tasks")
    validation = None
    if args.validate_every is not None:
        if dataset is None or "val" not in dataset.splits:
            raise ValueError(
                f"--validate-every needs a dataset with val classes; {args.dataset} has "
                f"{'none' if dataset is None else ', '.join(dataset.splits)}"
            )
        validation = (
            _sampler(
                config, dataset, "val", ways=args.ways, shots=args.shots, queries=args.queries
            ),
            args.validate_every,
        )
    _check_resume(out, config, args.resume)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.write_atomic(out / "config.json", (json.dumps(config, indent=2) + "\n").encode())
    state, history = meta_train(
        learner,
        sampler,
        _optimizer(config),
        steps=args.steps,
        key=jax.random.key(args.seed),
        tasks=args.tasks,
        metrics_path=out / "metrics.jsonl",
        log_every=args.log_every,
        progress=not args.no_progress,
        validation=validation,
        validation_episodes=args.val_episodes,
        mesh=mesh,
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        resume=args.resume,
        name=args.learner,
    )
    checkpoint.save_params(out / "params.msgpack", state.params)
    params = state.params
    if validation is not None:
        # Model selection on the meta-validation classes, as the papers report.
        params = _best_params(out / "checkpoints", state, history, validation_metric(validation[0]))
        checkpoint.save_params(out / "params_best.msgpack", params)
    print(f"saved the run in {out}")
    test_learner = _make_learner(
        config,
        shots=config["test_shots"],
        queries=config["test_queries"],
        train_pool=train_pool,
    )
    summary = _test(
        test_learner,
        params,
        dataset,
        config,
        args,
        ways=config["test_ways"],
        shots=config["test_shots"],
        queries=config["test_queries"],
    )
    (out / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _eval(args) -> dict:
    run = Path(args.run_dir)
    if not (run / "config.json").is_file():
        raise ValueError(
            f"run_dir must be a folder saved by `metajax train`; {run} has no config.json"
        )
    config = json.loads((run / "config.json").read_text())
    dataset = _load_dataset(config["dataset"], args)
    ways = args.ways or config["test_ways"]
    shots = args.shots or config["test_shots"]
    queries = args.queries or config["test_queries"]
    if config["learner"] in FIXED_WAYS and ways != config["ways"]:
        raise ValueError(
            f"ways must equal the run's {config['ways']} for {config['learner']}, whose head "
            f"has one output per way; got {ways}"
        )
    if config["learner"] == "snail" and shots != config["shots"]:
        raise ValueError(
            f"shots must equal the run's {config['shots']} for snail, whose temporal "
            f"convolutions are sized by the sequence length; got {shots}"
        )
    sampler = _sampler(config, dataset, args.split, ways=ways, shots=shots, queries=queries)
    learner = _make_learner(
        config,
        shots=shots,
        queries=queries,
        train_pool=None if dataset is None else dataset.pool("train"),
    )
    template = learner.init(jax.random.key(0), sampler.sample(jax.random.key(0), sampler.data))
    params = checkpoint.load_params(run / "params.msgpack", template)
    return _test(
        learner,
        params,
        dataset,
        config,
        args,
        ways=ways,
        shots=shots,
        queries=queries,
        split=args.split,
    )


def _stop_on_sigterm(signum, frame):
    # A scheduler's SIGTERM unwinds like Ctrl-C, so pending checkpoint writes finish.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if main_thread else None
    try:
        if args.command == "train":
            _train(args)
        else:
            _eval(args)
    except NonFiniteError as err:
        print(f"metajax {args.command}: error: {err}", file=sys.stderr)
        return 3
    except ValueError as err:
        # Bad input is the user's to fix: say what, without a traceback into library code.
        print(f"metajax {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
