"""A paper-scale schedule for SNAIL on Omniglot (Mishra et al. 2018), for a GPU.

The network is the paper's (Appendix: Conv-4 embedding, AttentionBlock(64, 32),
TCBlock(T, 128), AttentionBlock(256, 128), TCBlock(T, 128), AttentionBlock(512, 256),
1x1 convolution to N logits), trained with Adam. We could not check the paper's
optimiser settings and length against its text while writing this benchmark
(no access to it offline), so these numbers are ours, chosen to match common
practice and public re-implementations: a meta-batch of 32 sequences' worth of
episodes, Adam at 1e-3, 40,000 meta-steps; each training episode has one query per
class (``ways`` sequences sharing one support set, each like the paper's
``N·K + 1`` sequence). No time limit.
"""

from configs import default


def get_config():
    config = default.get_config()
    for spec in config["settings"].values():
        spec.update(queries=1, tasks=32, steps=40_000, eval_episodes=1000)
    config.update(time_limit=None, log_every=500)
    return config
