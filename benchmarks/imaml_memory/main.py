"""Peak memory of a jitted meta-step against inner steps: MAML grows, iMAML stays flat.

python benchmarks/imaml_memory/main.py     # CPU is fine: it compiles, it does not train
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.override("--steps", "inner_steps", type=int, nargs="+", help="inner steps to try"),
)

if __name__ == "__main__":
    main()
