"""What the side-by-side speed benchmarks share: the other framework's Python, one
measurement per process, the machine's matmul roof and the medians over rounds.

Each measurement runs in a process of its own (``run_json``), so that its peak RSS is
its own; the rounds interleave the workloads and both sides, and a row is the median
over rounds of each round's median step time (``summarise``).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent
DEFAULT_VENV = BENCHMARKS / "maml_speed" / ".venv-l2l"


def peak_rss_gb() -> float:
    """This process's peak resident memory so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def torch_python(venv=None) -> Path:
    """The Python that has torch (and learn2learn).

    ``$L2L_PYTHON`` names one directly (on a GPU machine, its own CUDA torch);
    otherwise the venv that ``maml_speed/setup_env.sh`` makes.
    """
    if venv is None and os.environ.get("L2L_PYTHON"):
        return Path(os.environ["L2L_PYTHON"])
    venv = Path(venv or os.environ.get("L2L_VENV") or DEFAULT_VENV)
    python = venv / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(
            f"no PyTorch environment at {venv}: run bash {BENCHMARKS / 'maml_speed/setup_env.sh'}"
        )
    return python


def run_json(command: list[str]) -> dict:
    """Runs ``command`` and returns the JSON object on the last line of its output."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def matmul_peak_gflops(size: int = 4096, repeats: int = 5) -> float:
    """The machine's float32 matmul rate through XLA (GFLOP/s, best of ``repeats``): the
    roof that every FLOP rate of the speed benchmarks is compared with."""
    import jax

    a = jax.random.normal(jax.random.key(0), (size, size))
    dot = jax.jit(lambda a: a @ a)
    dot(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def summarise(runs: list[dict]) -> dict:
    """Medians over rounds of the per-round medians (and of compile times); the largest
    peak RSS of any round."""

    def median(key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    return dict(
        value=median("seconds_per_step"),
        per_repetition=[round(r["seconds_per_step"], 4) for r in runs],
        compile_s=median("compile_s"),
        first_step_s=median("first_step_s"),
        peak_rss_gb=max(r["peak_rss_gb"] for r in runs),
        gflop_per_step=median("gflop_per_step"),
    )


def load_warning() -> float:
    """The 1-minute load average, with a warning when the machine is not idle."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before starting; timings want an idle machine")
    return load
