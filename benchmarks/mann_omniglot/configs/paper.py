"""The schedule of Santoro et al. 2016 (§4 and appendix, as we read them), for a GPU.

100,000 episodes in minibatches of 16, RMSProp at a learning rate of 1e-4, the
paper's MANN (LSTM controller of 200 units, 128 x 40 memory, 4 read heads) and its
200-unit LSTM baseline, 20x20 images. We read "100,000 episodes" as 100,000 updates
of 16 episodes each. The RMSProp decay (0.95) and the gradient clipping are not stated
in the paper: they are the usual NTM-family settings. No time limit. The learned key
strength of our MANN (a deviation; see ``metajax.learners.model.mann``) stays on; set
``mann.key_strength`` to False for the paper's plain cosine.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        steps={"MANN": 100_000, "LSTM": 100_000},
        time_limit=None,
        optimizer="rmsprop",
        learning_rate=1e-4,
        log_every=500,
        eval_episodes=1000,
    )
    return config
