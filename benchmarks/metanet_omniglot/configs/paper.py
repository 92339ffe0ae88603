"""The paper's networks and training setup (Munkhdalai & Yu 2017, §4; released code), for a GPU.

64 filters, 10 queries per class in a training episode (the released Omniglot
script), Adam at 1e-3 with gradient clipping at 10, one episode per update. The
paper does not state the number of training episodes; the released script's loop
is bounded at 100,000 x 100 episodes and was stopped by hand, so 100,000 episodes
here is our choice, not the paper's. No time limit.
"""

from configs import default


def get_config():
    config = default.get_config()
    config["model"].update(filters=64)
    for spec in config["settings"].values():
        spec.update(queries=10, steps=100_000)
    config.update(time_limit=None, log_every=1000)
    return config
