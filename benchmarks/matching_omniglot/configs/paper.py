"""A paper-length schedule for a GPU: 20,000 meta-steps per setting, the paper's model.

Unlike the CPU budget, no time limit, the plain cosine softmax of eq. 2
(``scale=1``), and 1000 test episodes of 15 queries per class.

Vinyals et al. 2016 do not state how long they train on Omniglot; 20,000 steps of
the CPU config's meta-batches (80,000 5-way 1-shot episodes at 4 per step) is well past where
metric learners on Omniglot stop improving (Snell et al. 2017 stop within a few tens
of thousands of episodes).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        steps=20_000,
        time_limit=None,
        decay_every=None,
        scale=1.0,
        eval_episodes=1000,
        test_queries=15,
        eval_batch=50,
    )
    return config
