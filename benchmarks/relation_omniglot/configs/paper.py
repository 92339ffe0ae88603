"""The paper-length schedule of Sung et al. 2018 (§4.1), for a GPU.

Adam at 1e-3 halved every 100,000 episodes. The paper does not state the total
number of episodes; 1,000,000 is the default of the authors' released Omniglot
training scripts. No time limit.
"""

from configs import default


def get_config():
    config = default.get_config()
    for spec in config["settings"].values():
        spec.update(steps=1_000_000, decay_every=100_000)
    config.update(time_limit=None, log_every=1000)
    return config
