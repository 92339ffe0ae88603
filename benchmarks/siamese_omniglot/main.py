"""Siamese network on Omniglot (Lake protocol): 20-way within-alphabet one-shot vs Koch et al.

Trains on the 964 characters of the 30 background alphabets and scores one-shot runs
of 20 characters of one evaluation alphabet (20 alphabets, 659 characters), one
drawer's images as the support set and another's as the queries: 20 trials a run.

python benchmarks/siamese_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/siamese_omniglot/main.py --config paper --data-dir DATA     # GPU length
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
    parser.add_argument(
        "--config",
        choices=("default", "paper"),
        default="default",
        help="default: CPU budget; paper: Koch-style pairs and distortions, GPU length",
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder holding omniglot/ (or $METAJAX_DATA_DIR)"
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where the metrics JSONL file goes")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="override the config's time_limit (s)"
    )
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    if args.steps is not None:
        config["steps"] = args.steps
    if args.time_limit is not None:
        config["time_limit"] = args.time_limit
    records = train.train_and_evaluate(config, data_dir=args.data_dir, workdir=args.workdir)
    for record in records:
        record["config"] = args.config
        print(
            f"{record['setting']}: {100 * record['value']:.2f} ± {100 * record['ci95']:.2f} "
            f"(paper {100 * record['paper']:.1f}), {record['steps']} steps, "
            f"{record['wall_s']} s, {record['test_trials']} trials",
            flush=True,
        )
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    publish(records, args.results_dir, HERE.parent / "RESULTS.md" if default_dir else None)


if __name__ == "__main__":
    main()
