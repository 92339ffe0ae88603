"""The PyTorch side: learn2learn 0.2.0's MAML on the workload of configs/default.py.

Runs in the environment that setup_env.sh creates (not metajax's), and prints one JSON
line: the median seconds per meta-step after warm-up, the first step's time, the peak
resident memory and the versions.

  .venv-l2l/bin/python l2l_maml.py --inner-steps 1 --tasks 32 --steps 20 --warmup 2

The meta-step is learn2learn's Omniglot example (examples/vision/maml_omniglot.py):
for each task, ``clone()`` the MAML wrapper, ``adapt`` on the support loss (second
order unless ``--first-order``), back-propagate the query loss; then average the
accumulated gradients over the tasks and take one Adam step. Tasks come one after
another, as in learn2learn; the inputs are random Omniglot-shaped images drawn, as on
the metajax side, from a class-indexed pool.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import resource
import statistics
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn


def import_maml():
    """``learn2learn.algorithms.MAML`` without running ``learn2learn/__init__.py``.

    The package's ``__init__`` imports its vision, text and gym modules, and with them
    torchvision, whose registry wheel does not load beside the CPU torch ("operator
    torchvision::nms does not exist"). Registering bare package objects for
    ``learn2learn`` and ``learn2learn.algorithms`` lets Python load ``algorithms/maml.py``
    and what it imports (``algorithms/base_learner.py``, ``utils/``) from the installed
    files, and nothing else.
    """
    return import_algorithm("maml", "MAML")


def import_algorithm(module: str, name: str):
    """``learn2learn.algorithms.<module>.<name>`` (``"meta_sgd", "MetaSGD"``), loaded as
    :func:`import_maml` loads MAML: without the package's ``__init__``."""
    spec = importlib.util.find_spec("learn2learn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("learn2learn is not installed here; run setup_env.sh")
    root = Path(next(iter(spec.submodule_search_locations)))
    for package_name, path in (
        ("learn2learn", root),
        ("learn2learn.algorithms", root / "algorithms"),
    ):
        if package_name not in sys.modules:
            package = types.ModuleType(package_name)
            package.__path__ = [str(path)]
            package.__package__ = package_name
            sys.modules[package_name] = package
    algorithm = getattr(importlib.import_module(f"learn2learn.algorithms.{module}"), name)
    assert "torchvision" not in sys.modules, "learn2learn pulled torchvision in"
    return algorithm


def conv4(*, ways: int, filters: int, image=(28, 28, 1), blocks: int = 4) -> nn.Module:
    """metajax's Conv-4 in plain torch: 3x3 conv without bias, batch norm on batch statistics.

    ``track_running_stats=False`` makes BatchNorm2d normalise with the current batch's
    statistics in training and evaluation alike, as metajax's BatchStatNorm does.
    """
    height, width, channels = image
    layers = []
    for i in range(blocks):
        layers += [
            nn.Conv2d(channels if i == 0 else filters, filters, 3, padding=1, bias=False),
            nn.BatchNorm2d(filters, eps=1e-5, track_running_stats=False),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        height, width = height // 2, width // 2
    layers += [nn.Flatten(), nn.Linear(filters * height * width, ways)]
    return nn.Sequential(*layers)


def sample_task(pool: torch.Tensor, *, ways: int, shots: int, queries: int, generator):
    """One episode from ``pool [classes, examples, channels, h, w]``, labels 0..ways-1.

    The indices are drawn on the CPU generator and the episode is gathered where the
    pool lives, so on a GPU the images never cross the bus.
    """
    classes, examples = pool.shape[:2]
    chosen = torch.randperm(classes, generator=generator)[:ways]
    picks = torch.stack(
        [torch.randperm(examples, generator=generator)[: shots + queries] for _ in range(ways)]
    )
    x = pool[chosen[:, None], picks]  # [ways, shots + queries, c, h, w]
    labels = torch.arange(ways, device=pool.device)[:, None].expand(ways, shots + queries)
    support = x[:, :shots].reshape(-1, *x.shape[2:]), labels[:, :shots].reshape(-1)
    query = x[:, shots:].reshape(-1, *x.shape[2:]), labels[:, shots:].reshape(-1)
    return support, query


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--inner-lr", type=float, default=0.4)
    parser.add_argument("--first-order", action="store_true")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--tasks", type=int, default=32, help="meta-batch")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--image", type=int, nargs=3, default=(28, 28, 1), metavar=("H", "W", "C"))
    parser.add_argument("--pool", type=int, nargs=2, default=(100, 20), metavar=("CLASSES", "EX"))
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=20, help="timed meta-steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed meta-steps first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    MAML = import_maml()
    height, width, channels = args.image
    generator = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    pool = torch.rand(*args.pool, channels, height, width, generator=generator).to(device)
    model = conv4(ways=args.ways, filters=args.filters, image=args.image, blocks=args.blocks)
    model = model.to(device)
    maml = MAML(model, lr=args.inner_lr, first_order=args.first_order)
    optimizer = torch.optim.Adam(maml.parameters(), lr=args.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    episode = dict(ways=args.ways, shots=args.shots, queries=args.queries, generator=generator)

    def meta_step():
        optimizer.zero_grad()
        total = 0.0
        for _ in range(args.tasks):
            (support_x, support_y), (query_x, query_y) = sample_task(pool, **episode)
            learner = maml.clone()
            for _ in range(args.inner_steps):
                learner.adapt(loss_fn(learner(support_x), support_y))
            query_loss = loss_fn(learner(query_x), query_y)
            query_loss.backward()
            total += query_loss.item()
        for p in maml.parameters():
            p.grad.mul_(1.0 / args.tasks)
        optimizer.step()
        return total / args.tasks

    # query_loss.item() already waits for each task on a GPU; the synchronize makes the
    # optimizer step's kernels count too.
    wait = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(args.warmup + args.steps):
        wait()
        start = time.perf_counter()
        loss = meta_step()
        wait()
        times.append(time.perf_counter() - start)
    timed = times[args.warmup :]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            dict(
                framework="learn2learn",
                seconds_per_step=statistics.median(timed),
                first_step_s=times[0],
                warmup_s=sum(times[: args.warmup]),
                step_times=[round(t, 4) for t in timed],
                peak_rss_gb=peak_kb / 2**20,
                peak_device_gb=(
                    torch.cuda.max_memory_allocated(device) / 2**30
                    if device.type == "cuda"
                    else None
                ),
                device=(torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
                final_loss=loss,
                inner_steps=args.inner_steps,
                tasks=args.tasks,
                threads=torch.get_num_threads(),
                versions=dict(
                    torch=torch.__version__,
                    learn2learn=importlib.metadata.version("learn2learn"),
                    python=sys.version.split()[0],
                ),
            )
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
