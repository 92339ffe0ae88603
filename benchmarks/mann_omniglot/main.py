"""MANN and its LSTM baseline on Omniglot sequences against Santoro et al. 2016, Table 1.

5-way episodes of 10 instances per class as one shuffled, label-offset sequence;
accuracy at the 1st, 2nd, 3rd, 4th, 5th and 10th instance of a class, one record each.

python benchmarks/mann_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/mann_omniglot/main.py --config paper --data-dir DATA     # GPU, paper length
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
        help="default: CPU time budget; paper: Santoro et al.'s schedule (GPU)",
    )
    parser.add_argument("--methods", nargs="+", default=["MANN", "LSTM"], choices=("MANN", "LSTM"))
    parser.add_argument(
        "--data-dir", default=None, help="folder holding omniglot/ (or $METAJAX_DATA_DIR)"
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    parser.add_argument(
        "--steps", type=int, default=None, help="override the config's steps (every method)"
    )
    parser.add_argument(
        "--time-limit", type=float, default=None, help="override the training seconds per model"
    )
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    if args.steps is not None:
        config["steps"] = {method: args.steps for method in config["steps"]}
    if args.time_limit is not None:
        config["time_limit"] = args.time_limit
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    for method in args.methods:
        records = train.train_and_evaluate(
            config, method, data_dir=args.data_dir, workdir=args.workdir
        )
        for record in records:
            record["config"] = args.config
            paper = "–" if record["paper"] is None else f"{100 * record['paper']:.1f}"
            print(
                f"{method} {record['setting']}: {100 * record['value']:.2f} ± "
                f"{100 * record['ci95']:.2f} (paper {paper}), {record['steps']} steps, "
                f"{record['wall_s']} s",
                flush=True,
            )
        # Published per model so that a run cut short keeps what it finished.
        publish(records, args.results_dir, HERE.parent / "RESULTS.md" if default_dir else None)


if __name__ == "__main__":
    main()
