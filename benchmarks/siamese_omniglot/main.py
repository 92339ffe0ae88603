"""Siamese network on Omniglot (Lake protocol): 20-way within-alphabet one-shot vs Koch et al.

Trains on the 964 characters of the 30 background alphabets and scores one-shot runs
of 20 characters of one evaluation alphabet (20 alphabets, 659 characters), one
drawer's images as the support set and another's as the queries: 20 trials a run.

python benchmarks/siamese_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/siamese_omniglot/main.py --config paper --data-dir DATA     # GPU length
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.STEPS,
    harness.TIME_LIMIT,
    harness.DATA_DIR,
    harness.WORKDIR,
)

if __name__ == "__main__":
    main()
