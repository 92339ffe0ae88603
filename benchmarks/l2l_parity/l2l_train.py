"""The reference side: learn2learn 0.2.0's MAML, FOMAML, Meta-SGD or ANIL on metajax's pools.

Runs in the environment that ``maml_speed/setup_env.sh`` creates. Reads the pools that
``train.py`` exported (``--data``: an ``.npz`` with ``train`` and ``test``, each
``[classes, examples, height, width, 1]`` float32), trains learn2learn's Omniglot example
(``examples/vision/maml_omniglot.py``: for each task ``clone()``, ``adapt`` on the mean
support cross-entropy, back-propagate the query loss; the gradients averaged over the
meta-batch, one Adam step) on metajax's Conv-4 in torch (``maml_speed/l2l_maml.py``), and
with ``--algorithm metasgd`` learn2learn's ``MetaSGD`` wrapper in MAML's place (its rates
drawn uniformly in ``--lr-init``), with ``--algorithm anil`` its ANIL example
(``examples/vision/anil_fc100.py``: the body embeds the task's support and query images
in one batch, and ``MAML`` wraps the linear head alone). It
at every step of ``--eval-at`` scores ``--eval-episodes`` test episodes: adapt
``--test-inner-steps`` steps on the support set, predict the query set as one batch
(batch norm on the batch's statistics: transductive, as metajax). Prints one JSON line
per evaluation (with ``inner_loss_first``, the support loss before adaptation averaged
over the steps since the last evaluation), then one with the run's totals.

  .venv-l2l/bin/python l2l_train.py --data pools.npz --steps 200 --eval-at 100 200
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "maml_speed"))
from l2l_maml import conv4, import_algorithm, sample_task  # noqa: E402


def mean_ci95(values) -> tuple[float, float]:
    """Mean and 1.96 standard errors (ddof 1), as ``metajax.training.trainer.mean_ci95``."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(values.size))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the .npz of pools train.py wrote")
    parser.add_argument("--algorithm", choices=("maml", "metasgd", "anil"), default="maml")
    parser.add_argument("--first-order", action="store_true")
    parser.add_argument(
        "--lr-init",
        type=float,
        nargs=2,
        default=(0.005, 0.1),
        metavar=("LOW", "HIGH"),
        help="Meta-SGD: the per-parameter rates start uniform in [LOW, HIGH] (Li et al.)",
    )
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--inner-lr", type=float, default=0.4)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--test-inner-steps", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=8, help="meta-batch")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-at", type=int, nargs="+", required=True)
    parser.add_argument("--eval-episodes", type=int, default=600)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not all(1 <= s <= args.steps for s in args.eval_at):
        parser.error(f"--eval-at steps must be in [1, {args.steps}], got {args.eval_at}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with np.load(args.data) as pools:
        # [classes, examples, h, w, c] -> [classes, examples, c, h, w]
        train_pool, test_pool = (
            torch.from_numpy(np.ascontiguousarray(np.moveaxis(pools[s], -1, 2)))
            for s in ("train", "test")
        )
    image = tuple(train_pool.shape[3:]) + (train_pool.shape[2],)
    model = conv4(ways=args.ways, filters=args.filters, image=image, blocks=args.blocks)
    if args.algorithm == "anil":
        body = model[:-1]
        adapted = import_algorithm("maml", "MAML")(
            model[-1], lr=args.inner_lr, first_order=args.first_order
        )
        parameters = [*body.parameters(), *adapted.parameters()]
    else:
        body = None
        if args.algorithm == "metasgd":
            low, high = args.lr_init
            lrs = nn.ParameterList(
                [nn.Parameter(torch.empty_like(p).uniform_(low, high)) for p in model.parameters()]
            )
            adapted = import_algorithm("meta_sgd", "MetaSGD")(
                model, lrs=lrs, first_order=args.first_order
            )
        else:
            adapted = import_algorithm("maml", "MAML")(
                model, lr=args.inner_lr, first_order=args.first_order
            )
        parameters = list(adapted.parameters())
    optimizer = torch.optim.Adam(parameters, lr=args.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)
    episode = dict(ways=args.ways, shots=args.shots, queries=args.queries, generator=generator)
    test_generator = torch.Generator().manual_seed(args.seed + 1)

    def task_logits(support, query_x, steps, first_order=None):
        """Query logits after ``steps`` adaptations, and the support loss before them."""
        support_x, support_y = support
        if body is not None:
            # ANIL: one pass over support and query, as metajax's anil embeds them.
            features = body(torch.cat([support_x, query_x]))
            support_x, query_x = features[: len(support_x)], features[len(support_x) :]
        learner = adapted.clone()
        before = float("nan")
        for i in range(steps):
            support_loss = loss_fn(learner(support_x), support_y)
            before = support_loss.item() if i == 0 else before
            learner.adapt(support_loss, first_order=first_order)
        return learner(query_x), before

    def meta_step():
        """The mean query loss after adaptation and support loss before it."""
        optimizer.zero_grad()
        total, before = 0.0, 0.0
        for _ in range(args.tasks):
            support, (query_x, query_y) = sample_task(train_pool, **episode)
            logits, first = task_logits(support, query_x, args.inner_steps)
            query_loss = loss_fn(logits, query_y)
            query_loss.backward()
            total += query_loss.item()
            before += first
        for p in parameters:
            p.grad.mul_(1.0 / args.tasks)
        optimizer.step()
        return total / args.tasks, before / args.tasks

    def evaluate():
        accuracies = []
        for _ in range(args.eval_episodes):
            (support_x, support_y), (query_x, query_y) = sample_task(
                test_pool,
                ways=args.ways,
                shots=args.shots,
                queries=args.queries,
                generator=test_generator,
            )
            logits, _ = task_logits(
                (support_x, support_y), query_x, args.test_inner_steps, first_order=True
            )
            accuracies.append((logits.detach().argmax(1) == query_y).float().mean().item())
        return mean_ci95(accuracies)

    train_s, loss, since_last = 0.0, float("nan"), []
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        loss, before = meta_step()
        train_s += time.perf_counter() - start
        since_last.append(before)
        if step in args.eval_at:
            accuracy, ci95 = evaluate()
            record = dict(
                step=step,
                accuracy=accuracy,
                ci95=ci95,
                loss=loss,
                inner_loss_first=float(np.mean(since_last)),
                train_s=train_s,
            )
            print(json.dumps(record), flush=True)
            since_last = []
    versions = dict(
        torch=torch.__version__,
        learn2learn=importlib.metadata.version("learn2learn"),
        python=sys.version.split()[0],
    )
    print(json.dumps(dict(framework="learn2learn", train_s=train_s, versions=versions)), flush=True)


if __name__ == "__main__":
    main()
