"""metajax against learn2learn 0.2.0 at equal updates on the same Omniglot pools (issue 16).

bash benchmarks/maml_speed/setup_env.sh      # once: CPU torch 2.13.0 + learn2learn 0.2.0
python benchmarks/l2l_parity/main.py --data-dir ../shared/data
python benchmarks/l2l_parity/main.py --data-dir ../shared/data --methods FOMAML \
    --steps 400 --set 'eval_at=(200, 400)'   # a longer curve
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.override("--methods", nargs="+", choices=("MAML", "FOMAML", "Meta-SGD", "ANIL")),
    harness.STEPS,
    harness.TASKS,
    harness.SEED,
    harness.DATA_DIR,
    harness.option("--venv", help="the PyTorch venv (maml_speed/.venv-l2l)"),
)

if __name__ == "__main__":
    main()
