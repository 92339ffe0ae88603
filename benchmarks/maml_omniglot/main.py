"""MAML, FOMAML and iMAML on Omniglot (Vinyals split), 5-way and 20-way 1-shot.

python benchmarks/maml_omniglot/main.py --data-dir ../shared/data                  # CPU budget
python benchmarks/maml_omniglot/main.py --config paper --data-dir ../shared/data   # GPU
python benchmarks/maml_omniglot/main.py --config paper --time-limit 240 --ways 5 --methods MAML
    # the paper's schedule, stopped after 4 minutes of training (a GPU budget)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import train  # noqa: E402

from metajax.results import load_config, publish  # noqa: E402

RESULTS = HERE.parent / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", choices=("default", "paper"), default="default")
    parser.add_argument("--methods", nargs="+", default=None, choices=("MAML", "FOMAML", "iMAML"))
    parser.add_argument("--ways", type=int, nargs="+", default=None, choices=(5, 20))
    parser.add_argument("--steps", type=int, default=None, help="meta-steps (the config's)")
    parser.add_argument("--tasks", type=int, default=None, help="meta-batch (the config's)")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds of training per run, after which it stops and is evaluated as it is",
    )
    parser.add_argument("--data-dir", default=None, help="folder holding omniglot/")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    for key in ("steps", "tasks"):
        if getattr(args, key) is not None:
            if getattr(args, key) < 1:
                parser.error(f"--{key} must be >= 1, got {getattr(args, key)}")
            config[key] = {ways: getattr(args, key) for ways in (5, 20)}
    if args.time_limit is not None:
        if not args.time_limit > 0:
            parser.error(f"--time-limit must be > 0 seconds, got {args.time_limit}")
        config["time_limit"] = args.time_limit
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    for ways in args.ways or config["ways"]:
        for method in args.methods or config["methods"]:
            record = train.train_and_evaluate(
                config, method, ways, data_dir=args.data_dir, workdir=args.workdir
            )
            record["config"] = args.config
            print(
                f"{method} {record['setting']}: {100 * record['value']:.2f} ± "
                f"{100 * record['ci95']:.2f} (paper {100 * record['paper']:.2f})",
                flush=True,
            )
            # Published one by one so that a run cut short keeps what it finished.
            publish([record], args.results_dir, HERE.parent / "RESULTS.md" if default_dir else None)


if __name__ == "__main__":
    main()
