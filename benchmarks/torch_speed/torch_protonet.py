"""Plain PyTorch ProtoNet meta-step, written to the same specification as metajax's.

Snell et al. 2017's training episode on Omniglot-shaped inputs: Conv-4 (3x3 convolutions
with ``filters`` channels and no bias, batch norm on the batch's statistics, ReLU, 2x2
max-pool), support and query embedded together, prototypes as class means, negative
squared Euclidean distances as logits, cross-entropy, one Adam step. Episodes are drawn
from a pool of uniform random images ``[classes, examples, 1, H, W]``. Runs in the venv
that ``maml_speed/setup_env.sh`` makes; prints one JSON line.
"""

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch_timing import add_timing_options, time_and_print


def conv4(channels: int, filters: int, blocks: int) -> nn.Module:
    layers = []
    for i in range(blocks):
        layers += [
            nn.Conv2d(channels if i == 0 else filters, filters, 3, padding=1, bias=False),
            nn.BatchNorm2d(filters, track_running_stats=False),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
    return nn.Sequential(*layers, nn.Flatten())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ways", type=int, default=60)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--image", type=int, nargs=3, default=(28, 28, 1))
    parser.add_argument("--pool", type=int, nargs=2, default=(200, 20))
    add_timing_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    height, width, channels = args.image
    classes, examples = args.pool
    pool = torch.rand(classes, examples, channels, height, width)
    net = conv4(channels, args.filters, args.blocks)
    optimizer = torch.optim.Adam(net.parameters(), args.learning_rate)
    labels = torch.arange(args.ways).repeat_interleave(args.queries)
    shots = args.ways * args.shots

    def step():
        chosen = torch.randperm(classes)[: args.ways]
        index = torch.randperm(examples)[: args.shots + args.queries]
        x = pool[chosen][:, index]
        support = x[:, : args.shots].reshape(-1, channels, height, width)
        query = x[:, args.shots :].reshape(-1, channels, height, width)
        z = net(torch.cat([support, query]))
        prototypes = z[:shots].reshape(args.ways, args.shots, -1).mean(1)
        logits = -torch.cdist(z[shots:], prototypes).square()
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss)

    time_and_print(step, args)


if __name__ == "__main__":
    main()
