"""Peak memory of one jitted meta-step, MAML against iMAML, as inner steps grow.

Omniglot-shaped 5-way 1-shot tasks with 15 queries per class, meta-batch 32 (Finn et
al. 2017's Omniglot setting), Conv-4 with a 5-way head, inner SGD at 0.4 (MAML) and
0.1 with lambda = 2 and 5 CG steps (iMAML).
"""


def get_config():
    return dict(
        ways=5,
        filters=64,
        blocks=4,  # Conv-4
        shots=1,
        queries=15,
        tasks=32,
        inner_steps=(1, 5, 10, 20, 40),
        maml_inner_lr=0.4,
        imaml_inner_lr=0.1,
        proximal=2.0,
        cg_steps=5,
    )
