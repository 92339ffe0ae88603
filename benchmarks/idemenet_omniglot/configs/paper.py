"""The released code's schedule for IDeMe-Net (Chen et al. 2019), for a GPU.

The authors train for 120 epochs of 600 episodes (72,000 episodes) with Adam at 1e-3
halved every 40 epochs (24,000 episodes), with 7 deformed images per probe and the
15 nearest gallery images (their 1-shot command). Their schedule is for miniImageNet
with a ResNet-18; the paper has no Omniglot number, so ``paper`` stays null. The
gallery grows to one image of every meta-training character (4800 with train+val),
a quarter of them ranked per episode. No time limit; ProtoNet gets the same steps.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        steps=72_000,
        time_limit=None,
        gallery_classes=4800,
        candidates=1200,
        eval_batch=50,
        log_every=500,
    )
    return config
