"""Seconds per meta-step: metajax's MAML and iMAML against learn2learn 0.2.0's MAML.

The same workload on both sides (configs/default.py): Omniglot-shaped random inputs,
5-way 1-shot, 15 queries per class, meta-batch 32, Conv-4, second-order MAML with
inner rate 0.4 and 1 or 5 inner steps, Adam 1e-3; iMAML (lambda 2, 5 CG steps) against
metajax's unrolled MAML with as many inner steps. Each workload runs in its own process
(so that its peak RSS is its own), the workloads interleaved, ``--repetitions`` times.

bash benchmarks/maml_speed/setup_env.sh     # once: CPU torch 2.13.0 + learn2learn 0.2.0
python benchmarks/maml_speed/main.py        # 2 warm-up + 20 timed steps, 3 repetitions
python benchmarks/maml_speed/main.py --steps 3 --repetitions 1 --dry-run   # a quick look
python benchmarks/maml_speed/main.py --methods maml --conv im2col --dry-run  # an alternative

Timings need an otherwise idle machine: with the cores shared, torch's OpenMP threads
wait on each other and the numbers mean little (README.md).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.override("--inner-steps", type=int, nargs="+", help="the config's: 1 5"),
    harness.override("--methods", nargs="+", choices=("maml", "imaml", "learn2learn")),
    harness.override("--steps", type=harness.positive_int, help="timed meta-steps (20)"),
    harness.override("--warmup", type=int, help="untimed meta-steps first (2)"),
    harness.override("--repetitions", type=harness.positive_int, help="interleaved rounds (3)"),
    harness.TASKS,
    harness.override("--conv", choices=("auto", "conv", "im2col")),
    harness.override("--task-map", choices=("auto", "vmap", "map")),
    harness.override("--map-batch-size", type=harness.positive_int),
    harness.option("--venv", help="the learn2learn venv (.venv-l2l)"),
    harness.override(
        "--torch-device",
        choices=("cpu", "cuda"),
        help="learn2learn's device (default: cuda when JAX runs on a GPU, else cpu)",
    ),
    harness.option(
        "--in-process", action="store_true", help="measure metajax in this process (shared RSS)"
    ),
)

if __name__ == "__main__":
    main()
