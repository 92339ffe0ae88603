"""One command line for every benchmark: options, config overrides, the print-and-publish loop.

A benchmark's ``main.py`` names its options; everything else is here::

    main = harness.benchmark(__file__, __doc__, harness.DATA_DIR, harness.STEPS)

``main(argv)`` parses ``--config`` (a module of the folder's ``configs/``), the named
options, ``--set KEY=VALUE``, ``--fake-data``, ``--results-dir`` and ``--dry-run``;
applies the overrides to the config; calls the folder's ``train.run(config,
**arguments)``, a generator that yields each run's
records as the run ends; gives every record the config's name; prints one line per
record (:func:`describe`) and publishes each run's records at once, so that a
benchmark cut short keeps what it finished. ``RESULTS.md`` is refreshed only when the
results go to ``benchmarks/results/``, the folder it is rendered from.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from harness.folder import config_names, import_own, load_config
from harness.results import _number, publish

BENCHMARKS = Path(__file__).resolve().parent.parent
RESULTS = BENCHMARKS / "results"
MARKDOWN = BENCHMARKS / "RESULTS.md"


class Option(NamedTuple):
    """One command-line option of a benchmark (build it with :func:`option` or :func:`override`).

    Attributes:
      flag: the option, e.g. ``"--steps"``.
      key: the config key it replaces (:func:`override`), or ``None`` for an option that
        is passed to ``train.run`` as the keyword argument of its name (:func:`option`).
      kwargs: ``argparse``'s ``add_argument`` keywords.
    """

    flag: str
    key: str | None
    kwargs: dict[str, Any]

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest", self.flag.lstrip("-").replace("-", "_"))


def option(flag: str, **kwargs) -> Option:
    """An option passed to ``train.run`` as the keyword argument of its name.

    Example:
      >>> option("--methods", nargs="+", choices=("MANN", "LSTM")).dest
      'methods'
    """
    return Option(flag, None, kwargs)


def override(flag: str, key: str | None = None, **kwargs) -> Option:
    """An option that, when given, replaces ``key`` (default: the flag's name) in the config.

    The key is replaced wherever it occurs: at the top level, in every entry of a dict
    that holds it per case (``steps={5: 300, 20: 150}``), and in nested settings
    (``settings["5w1s"]["steps"]``). A list of values (``nargs``) becomes a tuple.

    Example:
      >>> config = dict(steps={5: 300, 20: 150}, settings={"5w1s": dict(steps=900)})
      >>> apply_override(config, "steps", 2)
      >>> config
      {'steps': {5: 2, 20: 2}, 'settings': {'5w1s': {'steps': 2}}}
    """
    key = key or flag.lstrip("-").replace("-", "_")
    return Option(flag, key, kwargs)


def apply_override(config: dict, key: str, value) -> None:
    """Replaces ``key`` everywhere in ``config`` (see :func:`override`); a key that is
    nowhere in it is added at the top level."""
    if not _replace(config, key, value):
        config[key] = value


def _replace(config: dict, key: str, value) -> bool:
    found = False
    for name, current in config.items():
        if name == key:
            config[name] = {case: value for case in current} if isinstance(current, dict) else value
            found = True
        elif isinstance(current, dict):
            found = _replace(current, key, value) or found
    return found


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set``: the value is a Python literal, or else a string.

    Example:
      >>> parse_setting("test_ways=(5, 20)"), parse_setting("sampler=pairs")
      (('test_ways', (5, 20)), ('sampler', 'pairs'))
    """
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE with KEY a config key, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = _positive(int)
positive_float = _positive(float)

# The options most benchmarks share.
DATA_DIR = option("--data-dir", help="folder holding omniglot/ (or $METAJAX_DATA_DIR)")
WORKDIR = option("--workdir", help="where the metrics JSONL files go")
STEPS = override("--steps", type=positive_int, help="meta-steps of every run (the config's)")
TASKS = override("--tasks", type=positive_int, help="meta-batch of every run (the config's)")
TIME_LIMIT = override(
    "--time-limit",
    type=positive_float,
    help="seconds of training per run, after which it stops and is evaluated as it is",
)
SEED = override("--seed", type=int, help="the config's seed")


def describe(record: dict) -> str:
    """One line for a record: method, dataset, setting, value ± CI (paper), steps, seconds.

    Accuracies are in %, as in RESULTS.md.

    Example:
      >>> describe(dict(method="MAML", dataset="omniglot-vinyals", setting="5w1s",
      ...               metric="accuracy", value=0.9812, ci95=0.0021, paper=0.987, steps=300))
      'MAML omniglot-vinyals 5w1s: accuracy 98.12 ± 0.21 (paper 98.70), 300 steps'
    """
    metric = record["metric"]
    line = (
        f"{record['method']} {record['dataset']} {record['setting']}: "
        f"{metric} {_number(record['value'], metric)}"
    )
    if record.get("ci95") is not None:
        line += f" ± {_number(record['ci95'], metric)}"
    if record.get("paper") is not None:
        line += f" (paper {_number(record['paper'], metric)})"
    if record.get("steps") is not None:
        line += f", {record['steps']} steps"
    if record.get("wall_s") is not None:
        line += f", {record['wall_s']} s"
    return line


def benchmark(file: str, doc: str | None, *options: Option) -> Callable[..., list[dict]]:
    """The ``main(argv=None)`` of the benchmark folder that holds ``file``.

    Args:
      file: the benchmark's ``main.py`` (its ``__file__``).
      doc: the help text (its ``__doc__``: what it measures and how to run it).
      *options: the benchmark's options beyond ``--config``, ``--set``, ``--fake-data``,
        ``--results-dir`` and ``--dry-run``, e.g. :data:`DATA_DIR`, :data:`WORKDIR`,
        :data:`STEPS`.

    Returns:
      ``main(argv=None)``, which runs the benchmark and returns every record it made.
      ``train.run`` receives, besides the config, the options that are not overrides,
      and ``results_dir`` (``None`` on ``--dry-run``) if it takes that argument.
    """
    folder = Path(file).resolve().parent

    def main(argv: Sequence[str] | None = None) -> list[dict]:
        parser = argparse.ArgumentParser(
            prog=f"python benchmarks/{folder.name}/main.py",
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument(
            "--config",
            choices=config_names(folder),
            default="default",
            help="the schedule, a module of configs/ (default: the CPU budget)",
        )
        for opt in options:
            parser.add_argument(opt.flag, **opt.kwargs)
        parser.add_argument(
            "--set",
            dest="config_overrides",
            metavar="KEY=VALUE",
            type=parse_setting,
            action="append",
            default=[],
            help="replace a config key wherever it occurs (a Python literal), e.g. "
            "--set eval_episodes=100; applied after the named options",
        )
        parser.add_argument(
            "--fake-data",
            action="store_true",
            help="train on generated data in the real dataset's shape: checks the pipeline "
            "in seconds, measures nothing (write the results elsewhere)",
        )
        parser.add_argument(
            "--results-dir", default=str(RESULTS), help="where the result JSON files go"
        )
        parser.add_argument("--dry-run", action="store_true", help="print, write nothing")
        args = parser.parse_args(argv)

        config = load_config(folder, args.config)
        arguments = {}
        for opt in options:
            value = getattr(args, opt.dest)
            if opt.key is None:
                arguments[opt.dest] = value
            elif value is not None:
                apply_override(config, opt.key, tuple(value) if isinstance(value, list) else value)
        for key, value in args.config_overrides:
            apply_override(config, key, value)
        results = None if args.dry_run else Path(args.results_dir)
        (train,) = import_own(folder, "train")
        if "results_dir" in inspect.signature(train.run).parameters:
            arguments["results_dir"] = results
        official = results is not None and results.resolve() == RESULTS.resolve()
        if args.fake_data and official:
            parser.error("--fake-data measures nothing: give --results-dir another folder")
        markdown = MARKDOWN if official else None

        records = []
        with contextlib.ExitStack() as stack:
            if args.fake_data:
                from harness.testing import Patcher, use_fake_data

                use_fake_data(stack.enter_context(Patcher()), train)
            for batch in train.run(config, **arguments):
                for record in batch:
                    record["config"] = args.config
                    if args.config_overrides:
                        record["config_overrides"] = dict(args.config_overrides)
                    if args.fake_data:
                        record["fake_data"] = True
                    print(describe(record), flush=True)
                records += batch
                if results is not None:
                    publish(batch, results, markdown)
        return records

    return main
