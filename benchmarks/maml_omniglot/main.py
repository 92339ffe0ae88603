"""MAML, FOMAML, iMAML, Reptile, Meta-SGD and ANIL on Omniglot (Vinyals split).

5-way and 20-way, 1-shot (``--shots 1 5`` adds 5-shot), every evaluation transductive.

python benchmarks/maml_omniglot/main.py --data-dir ../shared/data                  # CPU budget
python benchmarks/maml_omniglot/main.py --config paper --data-dir ../shared/data   # GPU
python benchmarks/maml_omniglot/main.py --config paper --time-limit 240 --ways 5 --methods MAML
    # the paper's schedule, stopped after 4 minutes of training (a GPU budget)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.override(
        "--methods", nargs="+", choices=("MAML", "FOMAML", "iMAML", "Reptile", "Meta-SGD", "ANIL")
    ),
    harness.override("--ways", type=int, nargs="+", choices=(5, 20)),
    harness.override("--shots", type=int, nargs="+", choices=(1, 5)),
    harness.STEPS,
    harness.TASKS,
    harness.TIME_LIMIT,
    harness.DATA_DIR,
    harness.WORKDIR,
)

if __name__ == "__main__":
    main()
