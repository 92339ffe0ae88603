"""Peak memory of a jitted meta-step against inner steps: MAML grows, iMAML stays flat.

python benchmarks/imaml_memory/main.py     # CPU is fine: it compiles, it does not train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import train  # noqa: E402

from metajax.results import load_config, publish  # noqa: E402

RESULTS = HERE.parent / "results"


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method in ("MAML", "iMAML"):
        mine = [r for r in rows if r["method"] == method]
        ax.plot(
            [r["inner_steps"] for r in mine],
            [r["peak_bytes"] / 2**30 for r in mine],
            marker="o",
            label=method,
        )
    ax.set_xlabel("inner steps")
    ax.set_ylabel("peak memory of one meta-step (GiB)")
    ax.set_title("Conv-4, Omniglot 5w1s, meta-batch 32")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", default="default")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="inner steps to try")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    config = load_config(HERE, args.config)
    rows = []
    print(f"{'method':6} {'steps':>5} {'peak GiB':>9} {'x 1-step':>8} {'compile s':>9}")
    for method in ("MAML", "iMAML"):
        base = None
        for steps in args.steps or config["inner_steps"]:
            row = train.measure(method, steps, config)
            base = base or row["peak_bytes"]
            row["ratio_to_1_step"] = round(row["peak_bytes"] / base, 3)
            rows.append(row)
            print(
                f"{method:6} {steps:5d} {row['peak_bytes'] / 2**30:9.3f} "
                f"{row['ratio_to_1_step']:8.2f} {row['compile_s']:9.1f}",
                flush=True,
            )
    records = [
        dict(
            benchmark="imaml_memory",
            method=r["method"],
            dataset="omniglot-shaped",
            setting=f"5w1s, {r['inner_steps']:02d} steps",
            metric="peak_GiB",
            value=r["peak_bytes"] / 2**30,
            paper=None,
            tasks=config["tasks"],
            ratio_to_1_step=r["ratio_to_1_step"],
            compile_s=r["compile_s"],
            measured="XLA memory_analysis of the compiled meta-step",
        )
        for r in rows
    ]
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    plot(rows, results / "imaml_memory.png")
    default_dir = results.resolve() == RESULTS.resolve()
    publish(records, results, HERE.parent / "RESULTS.md" if default_dir else None)


if __name__ == "__main__":
    main()
