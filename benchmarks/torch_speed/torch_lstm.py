"""Plain PyTorch LSTM meta-step, the same sizes as metajax's ``lstm_baseline``.

Santoro et al. 2016's LSTM baseline: ``tasks`` sequences of ``ways * instances`` steps,
each step's input the flattened image and the previous step's one-hot label; one LSTM
layer of ``hidden`` units, a linear softmax layer on its hidden state, cross-entropy over
every step, one Adam step with the gradient clipped to a global norm of 10. Inputs are
uniform random images. Runs in the venv that ``maml_speed/setup_env.sh`` makes; prints
one JSON line.
"""

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch_timing import add_timing_options, time_and_print


class LSTMBaseline(nn.Module):
    def __init__(self, inputs: int, hidden: int, ways: int):
        super().__init__()
        self.lstm = nn.LSTM(inputs + ways, hidden, batch_first=True)
        self.head = nn.Linear(hidden, ways)

    def forward(self, x, previous):
        h, _ = self.lstm(torch.cat([x, previous], dim=-1))
        return self.head(h)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=16)
    add_timing_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    length, pixels = args.ways * args.instances, args.image_size**2
    net = LSTMBaseline(pixels, args.hidden, args.ways)
    optimizer = torch.optim.Adam(net.parameters(), args.learning_rate)

    def step():
        x = torch.rand(args.tasks, length, pixels)
        y = torch.randint(args.ways, (args.tasks, length))
        previous = F.one_hot(torch.roll(y, 1, dims=1), args.ways).float()
        previous[:, 0] = 0.0
        logits = net(x, previous)
        loss = F.cross_entropy(logits.reshape(-1, args.ways), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        optimizer.step()
        return float(loss)

    time_and_print(step, args)


if __name__ == "__main__":
    main()
