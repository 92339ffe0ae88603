"""Meta-steps per second against the number of devices, and the scaling efficiency.

The meta-batch's tasks are split across a ``task_mesh`` (data parallel over tasks,
parameters replicated; metajax.training.distributed). Each device count runs in its own
process: on CPU with ``--xla_force_host_platform_device_count``, on an accelerator
with its first n devices. Two ways to scale are reported:

- weak: every device keeps ``tasks_per_device`` tasks, the meta-batch grows with the
  devices; efficiency = steps/s(n) / steps/s(1) (1.0: n devices do n times the work
  in the same time).
- strong: a fixed ``meta_batch`` is split; efficiency = steps/s(n) / (n * steps/s(1)).

python benchmarks/scaling/main.py                      # CPU: 1, 2, 4 forced host devices
python benchmarks/scaling/main.py --config cpu16       # a many-core host: up to 8
python benchmarks/scaling/main.py --config gpu         # the accelerators there are

Forced host devices share the host's cores: on a 2-core machine four "devices" cannot
run four times the work, and the table says so. Timings need an otherwise idle machine.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

main = harness.benchmark(
    __file__,
    __doc__,
    harness.override("--devices", type=harness.positive_int, nargs="+"),
    harness.override("--steps", type=harness.positive_int, help="timed meta-steps"),
    harness.override("--learners", nargs="+", choices=("maml", "protonet")),
)

if __name__ == "__main__":
    main()
