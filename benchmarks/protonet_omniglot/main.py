"""ProtoNet on Omniglot (Vinyals split): 5/20-way 1/5-shot against Snell et al. 2017.

python benchmarks/protonet_omniglot/main.py --data-dir ../shared/data          # CPU budget
python benchmarks/protonet_omniglot/main.py --config paper --data-dir DATA     # GPU, paper length
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.option("--shots", type=int, nargs="+", choices=(1, 5)),
    harness.STEPS,
    harness.TIME_LIMIT,
    harness.DATA_DIR,
    harness.WORKDIR,
)

if __name__ == "__main__":
    main()
