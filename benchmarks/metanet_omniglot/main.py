"""Meta Networks on Omniglot (Vinyals split): 5-way and 20-way 1-shot against Munkhdalai & Yu 2017.

python benchmarks/metanet_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/metanet_omniglot/main.py --config paper --data-dir DATA     # GPU, paper nets
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
        help="default: CPU budget (32 filters); paper: the paper's networks and schedule (GPU)",
    )
    parser.add_argument(
        "--settings", nargs="+", default=["5w1s", "20w1s"], choices=("5w1s", "20w1s")
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder holding omniglot/ (or $METAJAX_DATA_DIR)"
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    parser.add_argument("--steps", type=int, default=None, help="override every setting's steps")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="override the training seconds per model"
    )
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    if args.steps is not None:
        for spec in config["settings"].values():
            spec["steps"] = args.steps
    if args.time_limit is not None:
        config["time_limit"] = args.time_limit
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    for setting in args.settings:
        record = train.train_and_evaluate(
            config, setting, data_dir=args.data_dir, workdir=args.workdir
        )
        record["config"] = args.config
        print(
            f"{record['setting']}: {100 * record['value']:.2f} ± {100 * record['ci95']:.2f} "
            f"(paper {100 * record['paper']:.2f}), {record['steps']} steps, "
            f"{record['wall_s']} s",
            flush=True,
        )
        # Published per model so that a run cut short keeps what it finished.
        publish([record], args.results_dir, HERE.parent / "RESULTS.md" if default_dir else None)


if __name__ == "__main__":
    main()
