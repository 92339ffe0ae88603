"""MAML against the pretrained baseline on sinusoids (Finn et al. 2017, §5.1).

python benchmarks/maml_sinusoid/main.py     # the paper's 70,000 meta-steps; a CPU suffices
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.override("--shots", type=int, nargs="+", help="K (the config's: 5 10)"),
    harness.STEPS,
    harness.WORKDIR,
)

if __name__ == "__main__":
    main()
