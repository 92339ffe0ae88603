"""The paper-length schedule of Snell et al. 2017 (§3.1), for a GPU.

Adam at 1e-3 halved every 2000 episodes; Snell et al. stop on validation loss,
which their released code reaches within a few tens of thousands of episodes: 20k
episodes covers ten halvings, past which the learning rate no longer matters.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(steps={1: 20_000, 5: 20_000}, decay_every={1: 2000, 5: 2000}, time_limit=None)
    return config
