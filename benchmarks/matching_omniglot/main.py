"""Matching Networks on Omniglot (Vinyals split): 5/20-way 1/5-shot against Vinyals et al. 2016.

python benchmarks/matching_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/matching_omniglot/main.py --config paper --data-dir DATA     # GPU, paper length
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
SETTINGS = ("5w1s", "5w5s", "20w1s", "20w5s")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--config",
        choices=("default", "paper"),
        default="default",
        help="default: CPU budget (time-limited); paper: paper-length schedule (GPU)",
    )
    parser.add_argument("--settings", nargs="+", default=None, choices=SETTINGS)
    parser.add_argument(
        "--data-dir", default=None, help="folder holding omniglot/ (or $METAJAX_DATA_DIR)"
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="override the seconds of training per model"
    )
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    if args.steps is not None:
        config["steps"] = args.steps
    if args.time_limit is not None:
        config["time_limit"] = args.time_limit
    settings = config["settings"]
    if args.settings is not None:
        settings = [tuple(int(n) for n in s[:-1].split("w")) for s in args.settings]
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    for ways, shots in settings:
        record = train.train_and_evaluate(
            config, ways, shots, data_dir=args.data_dir, workdir=args.workdir
        )
        record["config"] = args.config
        print(
            f"{record['setting']}: {100 * record['value']:.2f} ± {100 * record['ci95']:.2f} "
            f"(paper {100 * record['paper']:.1f}), {record['steps']} steps, {record['wall_s']} s",
            flush=True,
        )
        # Published per setting so that a run cut short keeps what it finished.
        publish([record], args.results_dir, HERE.parent / "RESULTS.md" if default_dir else None)


if __name__ == "__main__":
    main()
