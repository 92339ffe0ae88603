"""IDeMe-Net against ProtoNet (same Conv-4, steps, episodes, optimizer) on Omniglot 20-way 1-shot.

python benchmarks/idemenet_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/idemenet_omniglot/main.py --config paper --data-dir DATA     # GPU, full length
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
