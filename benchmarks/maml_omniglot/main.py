"""MAML, FOMAML and iMAML on Omniglot (Vinyals split), 5-way and 20-way 1-shot.

python benchmarks/maml_omniglot/main.py --data-dir ../shared/data                  # CPU budget
python benchmarks/maml_omniglot/main.py --config paper --data-dir ../shared/data   # GPU
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
    parser.add_argument("--data-dir", default=None, help="folder holding omniglot/")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--workdir", default=None, help="where metrics JSONL files go")
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
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
