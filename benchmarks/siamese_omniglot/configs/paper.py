"""A GPU-length schedule closer to Koch et al. 2015's training, still at 28x28 with Conv-4.

Koch's minibatches of 128 independent pairs, half same and half different, each
image under random affine distortions (rotation, shear, scale, translation, each
applied with probability 0.5), trained for tens of thousands of minibatches. Adam
stands in for their SGD with momentum and per-layer learning rates; ``time_limit``
is lifted.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        sampler="pairs",
        pairs=128,
        pairing="aligned",
        distortion=True,
        steps=50_000,
        decay_every=10_000,
        time_limit=None,
        # Pair minibatches are not N-way episodes: Koch's objective alone, no ProtoNet.
        objectives=("verification",),
        compare_protonet=False,
    )
    return config
