"""Short runs that ask why the Siamese row is below ProtoNet: the loss, the head or the encoder?

The default schedule for 500 steps (about 5 CPU minutes a model), three models from
the same key on the same episodes: Koch's verification loss, the same twin and head
trained with an N-way cross-entropy over the episode, and ProtoNet with the same
Conv-4. Both Siamese encoders are also read with ProtoNet's nearest-prototype rule.
300 of Lake's runs (6000 trials) each.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        objectives=("verification", "episode"),
        compare_protonet=True,
        steps=500,
        time_limit=None,
        eval_episodes=300,
        tag="ablation, 500 steps",
    )
    return config
