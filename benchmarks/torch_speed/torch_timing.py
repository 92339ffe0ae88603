"""What the PyTorch scripts share: the common options, the timed loop and the JSON line."""

import json
import resource
import statistics
import sys
import time

import torch


def add_timing_options(parser) -> None:
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)


def time_and_print(step, args) -> None:
    """Runs ``step()`` (which returns the loss) ``warmup + steps`` times and prints the
    median of the timed ones, the first step's time and the peak RSS as one JSON line."""
    times = []
    for _ in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    result = dict(
        framework="pytorch",
        seconds_per_step=statistics.median(times[args.warmup :]),
        first_step_s=times[0],
        step_times=[round(t, 4) for t in times[args.warmup :]],
        peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        final_loss=loss,
        threads=args.threads,
        versions=dict(torch=torch.__version__, python=sys.version.split()[0]),
    )
    print(json.dumps(result), flush=True)
