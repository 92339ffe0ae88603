"""Seconds per meta-step: metajax's ProtoNet and LSTM baseline against plain PyTorch.

The same workloads on both sides (configs/default.py): ProtoNet's 60-way 1-shot and
5-shot training episodes (Conv-4) and the LSTM baseline of Santoro et al. (16 sequences
of 50 steps, 200 units), one Adam step each, on random Omniglot-shaped inputs. Each
measurement runs in its own process, the workloads and sides interleaved,
``--repetitions`` times.

bash benchmarks/maml_speed/setup_env.sh      # once: CPU torch 2.13.0 (+ learn2learn)
python benchmarks/torch_speed/main.py        # 2 warm-up + 20 timed steps, 3 rounds
python benchmarks/torch_speed/main.py --steps 5 --repetitions 1 --dry-run   # a quick look

Timings need an otherwise idle machine (see maml_speed/README.md).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.override(
        "--workloads", nargs="+", choices=("protonet-1", "protonet-5", "lstm"), help="all three"
    ),
    harness.override("--steps", type=harness.positive_int, help="timed meta-steps (20)"),
    harness.override("--warmup", type=int, help="untimed meta-steps first (2)"),
    harness.override("--repetitions", type=harness.positive_int, help="interleaved rounds (3)"),
    harness.option("--venv", help="the PyTorch venv (maml_speed/.venv-l2l)"),
)

if __name__ == "__main__":
    main()
