"""Matching Networks on Omniglot (Vinyals split): 5/20-way 1/5-shot against Vinyals et al. 2016.

python benchmarks/matching_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/matching_omniglot/main.py --config paper --data-dir DATA     # GPU, paper length
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.option("--settings", nargs="+", choices=("5w1s", "5w5s", "20w1s", "20w5s")),
    harness.STEPS,
    harness.TIME_LIMIT,
    harness.DATA_DIR,
    harness.WORKDIR,
)

if __name__ == "__main__":
    main()
