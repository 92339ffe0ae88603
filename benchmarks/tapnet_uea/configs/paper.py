"""The released code's optimisation, for a GPU: Adam at 1e-5, weight decay 1e-3, 3000 steps.

The TapNet code (github.com/xuchenchen/TapNet) trains full-batch on the whole train
split for up to 3000 epochs with these settings, as far as I can tell from it; here
each step is one episode over every class of the train split.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(learning_rate=1e-5, weight_decay=1e-3, steps=3000, time_limit=None)
    config["episodic"].update(steps=3000, time_limit=None)
    return config
