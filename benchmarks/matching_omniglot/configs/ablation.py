"""Short runs that show which choices matter: 5-way 1-shot, 300 meta-steps of 4 episodes.

Each run differs from the CPU budget in one choice, given with ``--set`` (the README has
the commands and the table): the cosine's scale in the attention softmax (1, the paper's
eq. 2, against 10), Adam's rate, the distance (cosine against squared Euclidean), and
full context embeddings. Each is scored on the same 300 test episodes; ``tag`` names
the choice so that no run replaces the budget row.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        settings=((5, 1),),
        steps=300,
        time_limit=None,
        decay_every=None,
        eval_episodes=300,
        tag="ablation, 300 steps",
    )
    return config
