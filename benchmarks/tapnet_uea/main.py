"""TapNet on UEA multivariate sets (official splits) against Zhang et al. 2020.

python benchmarks/tapnet_uea/main.py                        # CPU budget, both sets + episodic
python benchmarks/tapnet_uea/main.py --datasets BasicMotions --no-episodic
python benchmarks/tapnet_uea/main.py --config paper         # the released code's schedule
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.option("--datasets", nargs="+", help="UEA names (the config's)"),
    harness.option(
        "--no-episodic", dest="episodic", action="store_false", help="skip the N-way k-shot rows"
    ),
    harness.STEPS,
    harness.TIME_LIMIT,
    harness.SEED,
    harness.WORKDIR,
)

if __name__ == "__main__":
    main()
