"""MAML against the pretrained baseline on sinusoids (Finn et al. 2017, §5.1).

python benchmarks/maml_sinusoid/main.py     # the paper's 70,000 meta-steps; a CPU suffices
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
    parser.add_argument("--shots", type=int, nargs="+", default=None, help="K (default: 5 10)")
    parser.add_argument("--steps", type=int, default=None, help="override the meta-steps")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    if args.steps is not None:
        config["steps"] = args.steps
    records = []
    for shots in args.shots or config["shots"]:
        for record in train.train_and_evaluate(config, shots, workdir=args.workdir):
            record["config"] = args.config
            records.append(record)
            print(
                f"{record['method']} {record['setting']}: MSE {record['value']:.4f} "
                f"± {record['ci95']:.4f}",
                flush=True,
            )
    default_dir = Path(args.results_dir).resolve() == RESULTS.resolve()
    publish(records, args.results_dir, HERE.parent / "RESULTS.md" if default_dir else None)


if __name__ == "__main__":
    main()
