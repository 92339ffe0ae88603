"""Seconds per meta-step of metajax's MAML and iMAML, and of learn2learn's MAML.

:func:`measure_metajax` times metajax's own jitted meta-step
(:func:`metajax.make_train_step`) in this process; :func:`measure_l2l` runs
``l2l_maml.py`` in the PyTorch environment that ``setup_env.sh`` makes. Both return a
dict with ``seconds_per_step`` (the median after warm-up), ``first_step_s`` and
``peak_rss_gb`` (the peak of the whole process, so measure one workload per process
when that number matters: ``python train.py --method maml --inner-steps 1`` prints
one measurement as JSON, which is how main.py isolates them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np
import optax

import metajax as mj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import speed  # noqa: E402
from harness.speed import peak_rss_gb, run_json, torch_python  # noqa: E402

HERE = Path(__file__).resolve().parent
METHODS = ("maml", "imaml")


def peak_device_gb() -> float | None:
    """The accelerator's peak allocation so far, where the backend reports one (not CPU)."""
    if jax.default_backend() == "cpu":
        return None
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


CONVOLUTIONS = {"auto": "auto", "conv": "xla", "im2col": "im2col"}


def make_model(config: dict) -> mj.Model:
    kind = config.get("conv", "auto")
    shape = dict(filters=config["filters"], outputs=config["ways"], blocks=config["blocks"])
    if kind not in CONVOLUTIONS:
        raise ValueError(f"conv must be one of {tuple(CONVOLUTIONS)}, got {kind!r}")
    return mj.conv4(**shape, convolution=CONVOLUTIONS[kind])


def make_learner(config: dict, inner_steps: int, method: str) -> mj.Learner:
    model = make_model(config)
    if method == "maml":
        return mj.maml(model, inner_lr=config["inner_lr"], inner_steps=inner_steps)
    if method == "imaml":
        return mj.imaml(
            model,
            proximal=config["proximal"],
            inner_lr=config["inner_lr"],
            inner_steps=inner_steps,
            cg_steps=config["cg_steps"],
        )
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def make_sampler(config: dict) -> mj.EpisodeSampler:
    """Episodes from a pool ``[classes, examples, 28, 28, 1]`` of uniform random images."""
    rng = np.random.default_rng(config["seed"])
    pool = rng.random((*config["pool"], *config["image"]), dtype=np.float32)
    return mj.pool_sampler(
        pool, ways=config["ways"], shots=config["shots"], queries=config["queries"]
    )


def make_step(config, learner, optimizer, sampler):
    task_map = config.get("task_map", "auto")
    if task_map == "auto":  # metajax's default: one task at a time on the CPU
        return mj.make_train_step(learner, optimizer, sampler, tasks=config["tasks"])
    if task_map == "vmap":
        return mj.make_train_step(
            learner, optimizer, sampler, tasks=config["tasks"], task_chunk=None
        )
        return mj.make_train_step(learner, optimizer, sampler, tasks=config["tasks"])
    if task_map == "map":
        return mj.make_train_step(
            learner, optimizer, sampler, tasks=config["tasks"], task_chunk=config["map_batch_size"]
        )
    raise ValueError(f"task_map must be 'auto', 'vmap' or 'map', got {task_map!r}")


def _flops(compiled) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:  # cost analysis is best effort: not every backend offers it
        return None
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else {}
    return cost.get("flops") if cost else None


def measure_metajax(
    config: dict, inner_steps: int, method: str = "maml", *, steps=None, warmup=None
) -> dict:
    """Times metajax's jitted meta-step on the workload of ``config``.

    The step is compiled ahead of time (``compile_s``: tracing, lowering and XLA
    compilation), then run ``warmup`` times untimed (the first of them is
    ``first_step_s``) and ``steps`` times timed, each call waited for.

    Returns:
      A dict with ``seconds_per_step`` (median of the timed steps), ``step_times``,
      ``compile_s``, ``first_step_s``, ``gflop_per_step`` (XLA's count, or None),
      ``peak_rss_gb`` (this process's peak so far), ``final_loss`` and the settings.
    """
    steps = config["steps"] if steps is None else steps
    warmup = config["warmup"] if warmup is None else warmup
    if steps < 1 or warmup < 1:
        raise ValueError(f"steps and warmup must be >= 1, got {steps}, {warmup}")
    learner = make_learner(config, inner_steps, method)
    sampler = make_sampler(config)
    optimizer = optax.adam(config["learning_rate"])
    state = mj.init_state(learner, optimizer, sampler, jax.random.key(config["seed"]))
    jax.block_until_ready(state)

    start = time.perf_counter()
    compiled = make_step(config, learner, optimizer, sampler).lower(state, sampler.data).compile()
    compile_s = time.perf_counter() - start
    # XLA counts a loop's body once, so the count comes from the program that vmaps all
    # tasks (lowered, not compiled): the same arithmetic, whatever the task chunks.
    whole = mj.make_train_step(learner, optimizer, sampler, tasks=config["tasks"], task_chunk=None)
    flops = _flops(whole.lower(state, sampler.data))

    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        state, metrics = compiled(state, sampler.data)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
    timed = times[warmup:]
    return dict(
        framework="metajax",
        method=method,
        inner_steps=inner_steps,
        seconds_per_step=statistics.median(timed),
        step_times=[round(t, 4) for t in timed],
        compile_s=compile_s,
        first_step_s=times[0],
        gflop_per_step=None if flops is None else flops / 1e9,
        peak_rss_gb=peak_rss_gb(),
        peak_device_gb=peak_device_gb(),
        device=jax.devices()[0].device_kind,
        final_loss=float(metrics["loss"]),
        tasks=config["tasks"],
        task_map=config.get("task_map", "auto"),
        conv=config.get("conv", "auto"),
        versions=dict(jax=jax.__version__, python=sys.version.split()[0]),
    )


def torch_device(config: dict) -> str:
    """learn2learn's device: the config's, else the kind of device JAX is running on."""
    device = config.get("torch_device") or ("cuda" if jax.default_backend() == "gpu" else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"torch_device must be 'cpu' or 'cuda', got {device!r}")
    return device


def l2l_python(venv=None) -> Path:
    """The Python that has torch and learn2learn (:func:`harness.speed.torch_python`)."""
    return torch_python(venv)


def l2l_command(config: dict, inner_steps: int, *, venv=None, steps=None, warmup=None):
    """The command line that runs ``l2l_maml.py`` on ``config``'s workload."""
    python = l2l_python(venv)
    return [
        str(python),
        str(HERE / "l2l_maml.py"),
        f"--inner-steps={inner_steps}",
        f"--inner-lr={config['inner_lr']}",
        f"--ways={config['ways']}",
        f"--shots={config['shots']}",
        f"--queries={config['queries']}",
        f"--tasks={config['tasks']}",
        f"--filters={config['filters']}",
        f"--blocks={config['blocks']}",
        "--image",
        *map(str, config["image"]),
        "--pool",
        *map(str, config["pool"]),
        f"--learning-rate={config['learning_rate']}",
        f"--steps={config['steps'] if steps is None else steps}",
        f"--warmup={config['warmup'] if warmup is None else warmup}",
        f"--threads={config['torch_threads']}",
        f"--seed={config['seed']}",
        f"--device={torch_device(config)}",
    ]


def measure_l2l(config: dict, inner_steps: int, *, venv=None, steps=None, warmup=None) -> dict:
    """Runs learn2learn's MAML on ``config``'s workload in its own process and venv.

    Returns the JSON that ``l2l_maml.py`` prints: ``seconds_per_step``,
    ``first_step_s``, ``peak_rss_gb``, ``step_times`` and the versions.
    """
    return run_json(l2l_command(config, inner_steps, venv=venv, steps=steps, warmup=warmup))


def measure_metajax_isolated(config: dict, inner_steps: int, method: str = "maml") -> dict:
    """:func:`measure_metajax` in a fresh Python process, so that its peak RSS is its own."""
    return run_json(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            f"--method={method}",
            f"--inner-steps={inner_steps}",
            f"--config-json={json.dumps(config)}",
        ]
    )


NAMES = {"maml": "MAML (metajax)", "imaml": "iMAML (metajax)", "learn2learn": "MAML (learn2learn)"}
# What each method is compared with: learn2learn for MAML, metajax's own MAML for iMAML.
BASELINE = {"maml": "learn2learn", "imaml": "maml"}


def setting(config: dict, inner_steps: int) -> str:
    steps = f"{inner_steps} step{'s' if inner_steps != 1 else ''}"
    return f"{config['ways']}w{config['shots']}s, {steps}"


def method_name(config: dict, method: str) -> str:
    """The record's method; metajax variants other than the default are named in it."""
    name = NAMES[method]
    if method == "learn2learn":
        return name
    tags = []
    if config.get("conv", "auto") != "auto":
        tags.append("xla conv" if config["conv"] == "conv" else config["conv"])
    task_map = config.get("task_map", "auto")
    if task_map == "map":
        tags.append(f"chunks of {config['map_batch_size']} tasks")
    elif task_map == "vmap":
        tags.append("all tasks vmapped")
    return name if not tags else f"{name[:-1]}, {', '.join(tags)})"


def measure(config: dict, method: str, inner_steps: int, *, venv=None, isolate=True) -> dict:
    if method == "learn2learn":
        return measure_l2l(config, inner_steps, venv=venv)
    if isolate:
        return measure_metajax_isolated(config, inner_steps, method)
    return measure_metajax(config, inner_steps, method)


def summarise(runs: list[dict]) -> dict:
    """:func:`harness.speed.summarise`, with the accelerator's peak memory and device."""
    return dict(
        speed.summarise(runs),
        peak_device_gb=max((r.get("peak_device_gb") or 0.0 for r in runs), default=0.0) or None,
        framework_device=runs[-1].get("device"),
    )


def _fmt(value, spec=".3g"):
    return "–" if value is None else format(value, spec)


def table(config: dict, summary: dict) -> str:
    # On an accelerator the memory that matters is the device's, not the host process's.
    memory = "peak_device_gb" if any(r.get("peak_device_gb") for r in summary.values()) else None
    memory = memory or "peak_rss_gb"
    label = "peak device GB" if memory == "peak_device_gb" else "peak RSS GB"
    lines = [
        "| workload | metajax s/step | baseline | baseline s/step | ratio (metajax / baseline) "
        f"| compile s | {label} (metajax / baseline) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (method, inner_steps), row in summary.items():
        if method == "learn2learn":
            continue
        base = summary.get((BASELINE[method], inner_steps))
        ratio = None if base is None else row["value"] / base["value"]
        lines.append(
            f"| {method_name(config, method)}, {setting(config, inner_steps)} "
            f"| {_fmt(row['value'])} | {NAMES[BASELINE[method]]} "
            f"| {_fmt(base and base['value'])} | {_fmt(ratio, '.2f')} "
            f"| {_fmt(row['compile_s'], '.1f')} "
            f"| {_fmt(row[memory], '.2f')} / {_fmt(base and base[memory], '.2f')} |"
        )
    return "\n".join(lines)


def run(config: dict, *, venv=None, in_process=False):
    """Times every method and inner-step count of ``config``, interleaved, ``repetitions``
    times; yields one record per (method, inner steps) with the medians."""
    methods, inner_steps = list(config["methods"]), list(config["inner_steps"])
    if "learn2learn" in methods:
        l2l_command(config, 1, venv=venv)  # fails early without the venv
    load = speed.load_warning()
    peak = speed.matmul_peak_gflops()
    print(f"float32 matmul peak (XLA, 4096^2): {peak:.0f} GFLOP/s", flush=True)
    runs = defaultdict(list)
    for repetition in range(config["repetitions"]):
        for steps in inner_steps:
            for method in methods:
                result = measure(config, method, steps, venv=venv, isolate=not in_process)
                runs[method, steps].append(result)
                print(
                    f"[{repetition + 1}/{config['repetitions']}] {method_name(config, method)}, "
                    f"{setting(config, steps)}: {result['seconds_per_step']:.3f} s/step "
                    f"(first step {result['first_step_s']:.1f} s, compile "
                    f"{_fmt(result.get('compile_s'), '.1f')} s, peak RSS "
                    f"{result['peak_rss_gb']:.2f} GB)",
                    flush=True,
                )
    summary = {key: summarise(value) for key, value in runs.items()}
    print(table(config, summary), flush=True)

    records = []
    for (method, steps), row in summary.items():
        base = summary.get((BASELINE.get(method), steps))
        last = runs[method, steps][-1]
        records.append(
            dict(
                benchmark="maml_speed",
                method=method_name(config, method),
                dataset="omniglot-shaped",
                setting=setting(config, steps),
                metric="seconds_per_step",
                paper=None,
                **row,
                baseline=NAMES[BASELINE[method]] if method in BASELINE else None,
                ratio_to_baseline=None if base is None else row["value"] / base["value"],
                baseline_value=None if base is None else base["value"],
                baseline_peak_rss_gb=None if base is None else base["peak_rss_gb"],
                gflop_per_s=row["gflop_per_step"] / row["value"] if row["gflop_per_step"] else None,
                matmul_peak_gflop_per_s=peak,
                repetitions=config["repetitions"],
                steps=config["steps"],
                warmup=config["warmup"],
                tasks=config["tasks"],
                queries=config["queries"],
                filters=config["filters"],
                blocks=config["blocks"],
                inner_steps=steps,
                inner_lr=config["inner_lr"],
                conv=None if method == "learn2learn" else config["conv"],
                task_map=None if method == "learn2learn" else config["task_map"],
                torch_threads=config["torch_threads"] if method == "learn2learn" else None,
                torch_device=torch_device(config) if method == "learn2learn" else None,
                final_loss=last.get("final_loss"),
                framework_versions=last.get("versions"),
                load_average_at_start=round(load, 2),
            )
        )
    yield records


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prints one metajax measurement as JSON.")
    parser.add_argument("--method", choices=METHODS, default="maml")
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--config-json", default=None, help="the config (default: default.py)")
    args = parser.parse_args(argv)
    if args.config_json is None:
        sys.path.insert(0, str(HERE))
        from configs import default

        config = default.get_config()
    else:
        config = json.loads(args.config_json)
    print(json.dumps(measure_metajax(config, args.inner_steps, args.method)), flush=True)


if __name__ == "__main__":
    main()
