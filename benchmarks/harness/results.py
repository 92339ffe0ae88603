"""Benchmark result records: one JSON file per measured number, and the RESULTS.md table.

Every benchmark writes its numbers through :func:`write_result`, which stamps them
with the exact command, the machine, the package versions and the date, so that
``benchmarks/RESULTS.md`` (rendered by :func:`render_results_table`) can always be
traced back to a run. It serves the benchmarks only, so it lives beside them rather
than in the ``metajax`` package (it was ``metajax.results``).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shlex
import sys
import tempfile
from pathlib import Path

import jax

REQUIRED = ("benchmark", "method", "dataset", "setting", "metric", "value")
_PACKAGES = ("metajax", "jax", "jaxlib", "flax", "optax", "numpy")


def environment() -> dict:
    """The device, the host and the versions of the packages that decide the numbers."""
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    devices = jax.devices()
    kind = devices[0].device_kind if devices else "none"
    return {
        "device": f"{len(devices)}x {jax.default_backend()} ({kind}); host "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "versions": versions,
    }


def write_result(results_dir: str | os.PathLike, record: dict) -> Path:
    """Writes one result record as ``<benchmark>__<method>__<dataset>__<setting>.json``.

    On an accelerator the name ends in ``__<backend>`` (``__gpu``, ``__tpu``), so that a
    GPU run sits beside the CPU run of the same setting instead of replacing it.

    ``record`` must hold ``benchmark, method, dataset, setting, metric, value``, and an
    accuracy a boolean ``transductive``; ``ci95, paper, steps, wall_s`` and anything
    else are kept. The command, the
    environment and the date are added; a record that already holds ``device`` and
    ``versions`` (measured in a child process) keeps them, and its ``backend``.
    The file is replaced atomically, so the latest run of a setting is the one shown.
    """
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"record is missing {missing}")
    if str(record["metric"]).startswith("accuracy") and not isinstance(
        record.get("transductive"), bool
    ):
        raise ValueError(
            "record: an accuracy needs a boolean 'transductive' (whether a query's "
            "prediction reads the other queries of its episode, mj.is_transductive), "
            f"got {record.get('transductive')!r}"
        )
    # A record measured in another process (another device count) brings its own
    # device, versions and backend; this process's devices are not the ones measured.
    measured_elsewhere = "device" in record and "versions" in record
    full = {
        **record,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        **({} if measured_elsewhere else environment()),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    name = "__".join(re.sub(r"[^A-Za-z0-9.+-]+", "-", str(record[k])) for k in REQUIRED[:4])
    backend = record.get("backend") if measured_elsewhere else jax.default_backend()
    if backend not in (None, "cpu"):
        name += f"__{backend}"
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(full, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def load_results(results_dir: str | os.PathLike) -> list[dict]:
    """All result records in ``results_dir``, sorted by benchmark, method, dataset, setting."""
    records = [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))]
    keys = (*REQUIRED[:4], "device")
    return sorted(records, key=lambda r: tuple(str(r.get(k, "")) for k in keys))


def _number(value, metric: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.2f}" if metric == "accuracy" else f"{value:.4g}"


_TRANSDUCTIVE = {True: "yes", False: "no"}


def render_results_table(results_dir: str | os.PathLike) -> str:
    """A Markdown table of every result beside the paper's number (accuracies in %)."""
    lines = [
        "| benchmark | method | dataset | setting | metric | metajax | ± 95% CI | paper "
        "| transductive | steps | train wall s | device | date |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in load_results(results_dir):
        metric = r["metric"]
        lines.append(
            "| "
            + " | ".join(
                [
                    r["benchmark"],
                    r["method"],
                    r["dataset"],
                    r["setting"],
                    metric + (" (%)" if metric == "accuracy" else ""),
                    _number(r["value"], metric),
                    _number(r.get("ci95"), metric),
                    _number(r.get("paper"), metric),
                    _TRANSDUCTIVE.get(r.get("transductive"), "–"),
                    str(r.get("steps", "–")),
                    str(r.get("wall_s", "–")),
                    r.get("device", "–"),
                    r.get("date", "–")[:10],
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def update_results_markdown(markdown: str | os.PathLike, results_dir: str | os.PathLike) -> None:
    """Replaces the table between the ``results:begin``/``end`` markers of ``markdown``."""
    path = Path(markdown)
    text = path.read_text() if path.exists() else f"# Results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} must contain the markers {BEGIN} and {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{render_results_table(results_dir)}{END}{tail}")


def publish(records: list[dict], results_dir: str | os.PathLike, markdown=None) -> None:
    """Writes ``records``, prints the table of ``results_dir`` and refreshes ``markdown``."""
    for record in records:
        write_result(results_dir, record)
    print(render_results_table(results_dir), flush=True)
    if markdown is not None:
        update_results_markdown(markdown, results_dir)
