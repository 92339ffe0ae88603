"""IDeMe-Net against ProtoNet (same Conv-4, steps, episodes, optimizer) on Omniglot 20-way 1-shot.

python benchmarks/idemenet_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/idemenet_omniglot/main.py --config paper --data-dir DATA     # GPU, full length
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
        help="default: CPU budget; paper: the released code's schedule (GPU)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder holding omniglot/ (or $METAJAX_DATA_DIR)"
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="override IDeMe-Net's training seconds"
    )
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    if args.steps is not None:
        config["steps"] = args.steps
    if args.time_limit is not None:
        config["time_limit"] = args.time_limit
    markdown = HERE.parent / "RESULTS.md" if Path(args.results_dir).resolve() == RESULTS else None
    train_pool, test_pool, gallery = train.load_data(config, args.data_dir)
    records, accuracies = [], {}
    for method in train.METHODS:
        # ProtoNet gets exactly the steps IDeMe-Net ran: the same budget.
        steps = records[0]["steps"] if records else None
        record, accuracies[method] = train.train_and_evaluate(
            config, method, gallery, train_pool, test_pool, steps=steps, workdir=args.workdir
        )
        record["config"] = args.config
        records.append(record)
        print(
            f"{method} {record['setting']}: {100 * record['value']:.2f} ± "
            f"{100 * record['ci95']:.2f}, {record['steps']} steps, {record['wall_s']} s",
            flush=True,
        )
        # Published per model so that a run cut short keeps what it finished.
        publish([record], args.results_dir, markdown)
    gain = train.gain_record(config, records[0], *accuracies.values())
    gain["config"] = args.config
    print(f"gain: {100 * gain['value']:+.2f} ± {100 * gain['ci95']:.2f} points", flush=True)
    publish([gain], args.results_dir, markdown)


if __name__ == "__main__":
    main()
