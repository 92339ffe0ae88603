"""MAML, FOMAML, Meta-SGD and ANIL, Omniglot 5-way 1-shot, metajax against learn2learn 0.2.0.

Both sides: metajax's Conv-4 (64 filters, max-pooling, batch norm on batch statistics),
Finn et al.'s inner loop (SGD at 0.4 on the mean support cross-entropy, 1 step, 3 at
test), Adam 1e-3, meta-batch 8, 15 queries per class, trained on the train+val pools and
evaluated on 600 test episodes after 100 and 200 updates (two points of the curve).
Meta-SGD learns its per-parameter rates from Li et al.'s initialisation instead of the
fixed 0.4, and adapts one step at test; ANIL adapts the linear head alone.
"""


def get_config():
    return dict(
        methods=("MAML", "FOMAML"),
        ways=5,
        shots=1,
        queries=15,
        filters=64,
        blocks=4,
        inner_lr=0.4,
        inner_steps=1,
        test_inner_steps=3,
        tasks=8,
        learning_rate=1e-3,
        steps=200,
        eval_at=(100, 200),
        eval_episodes=600,
        trainval=True,
        # Li et al.'s rates, uniform in [0.005, 0.1], and their one inner step at test.
        metasgd=dict(lr_init=(0.005, 0.1), test_inner_steps=1),
        # metajax's initial weights: "flax" (LeCun normal, the library's) or "torch"
        # (torch's default uniform draw, the learn2learn side's): train.torch_like_init.
        init="flax",
        torch_threads=2,
        seed=0,
    )
