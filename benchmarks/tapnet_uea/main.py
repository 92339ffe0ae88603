"""TapNet on UEA multivariate sets (official splits) against Zhang et al. 2020.

python benchmarks/tapnet_uea/main.py                        # CPU budget, both sets + episodic
python benchmarks/tapnet_uea/main.py --datasets BasicMotions --no-episodic
python benchmarks/tapnet_uea/main.py --config paper         # the released code's schedule
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


def report(record):
    paper = "–" if record["paper"] is None else f"{100 * record['paper']:.1f}"
    print(
        f"{record['dataset']} {record['setting']}: {100 * record['value']:.2f} ± "
        f"{100 * record['ci95']:.2f} (paper {paper}), {record['steps']} steps, "
        f"{record['wall_s']} s",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--config",
        choices=("default", "paper"),
        default="default",
        help="default: CPU budget; paper: the released code's optimiser and length",
    )
    parser.add_argument("--datasets", nargs="+", default=None, help="UEA names (config's)")
    parser.add_argument(
        "--no-episodic", action="store_true", help="skip the N-way k-shot extra rows"
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    if args.steps is not None:
        config["steps"] = args.steps
        config["episodic"]["steps"] = args.steps
    if args.seed is not None:
        config["seed"] = args.seed
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    markdown = HERE.parent / "RESULTS.md" if default_dir else None
    jobs = [(name, False) for name in args.datasets or config["datasets"]]
    if not args.no_episodic:
        jobs += [
            (name, True)
            for name in config["episodic"]["datasets"]
            if args.datasets is None or name in args.datasets
        ]
    for name, episodes in jobs:
        records = train.train_and_evaluate(config, name, episodes=episodes, workdir=args.workdir)
        for record in records:
            record["config"] = args.config
            record["seed"] = config["seed"]
            report(record)
        # Published per model so that a run cut short keeps what it finished.
        publish(records, args.results_dir, markdown)


if __name__ == "__main__":
    main()
