"""MANN and its LSTM baseline on Omniglot sequences against Santoro et al. 2016, Table 1.

5-way episodes of 10 instances per class as one shuffled, label-offset sequence;
accuracy at the 1st, 2nd, 3rd, 4th, 5th and 10th instance of a class, one record each.

python benchmarks/mann_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/mann_omniglot/main.py --config paper --data-dir DATA     # GPU, paper length
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.option("--methods", nargs="+", choices=("MANN", "LSTM")),
    harness.STEPS,
    harness.TIME_LIMIT,
    harness.DATA_DIR,
    harness.WORKDIR,
)

if __name__ == "__main__":
    main()
