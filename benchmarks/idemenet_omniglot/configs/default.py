"""CPU budget: IDeMe-Net against ProtoNet on Omniglot (Vinyals split), 20-way 1-shot.

Both models have the same Conv-4 embedding (64 filters), train on the same 20-way
1-shot episodes (5 queries per class, one episode per update) with the same
optimizer (Adam at 1e-3) for the same number of steps, and are scored on the same
test episodes. IDeMe-Net trains first; ProtoNet then trains for exactly the steps
IDeMe-Net ran (which ``time_limit`` may cut short), so the budget in steps and
episodes is equal; IDeMe-Net's steps cost more CPU time (it embeds 8 images per
support example and ranks gallery candidates).

IDeMe-Net (Chen et al., CVPR 2019) settings, from the authors' released 1-shot
command: 7 deformed images per probe, gallery images drawn from the 15 nearest to
the class prototype, a 3x3 patch grid. The gallery is one image from each of 2048
meta-training characters (drawn once with ``seed``; never a test character), and
128 of them are ranked per episode (see metajax/idemenet.py for why).

``paper`` is null in the records: the paper reports miniImageNet and ImageNet 1K
numbers only (ResNet-18), none on Omniglot, so there is no number to compare with.
The gain over ProtoNet is published as its own record, with a 95% interval over the
paired test episodes.

What differs from a full run is the length: 800 steps (about 10-12 minutes of
IDeMe-Net training on 2 uncontended cores, and at most ``time_limit`` seconds),
against the released code's 120 epochs of 600 episodes. The learning rate would
halve every 24,000 episodes (the released code's 40 epochs), so it does not decay here.
"""


def get_config():
    return dict(
        ways=20,
        shots=1,
        queries=5,
        test_queries=5,
        eval_episodes=600,
        eval_batch=10,
        steps=800,
        time_limit=900.0,
        learning_rate=1e-3,
        decay_every=24_000,
        filters=64,
        generated=7,
        grid=3,
        neighbours=15,
        candidates=128,
        gallery_classes=2048,
        deformation_filters=32,
        trainval=True,
        seed=0,
        log_every=10,
    )
