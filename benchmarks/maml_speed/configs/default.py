"""The speed workload, identical for metajax and learn2learn: Omniglot-shaped MAML.

MAML's Omniglot 5-way 1-shot setting (Finn et al. 2017, §5.2): Conv-4 (four blocks
of 3x3 convolution with 64 filters, batch norm on the batch's statistics, ReLU, 2x2
max-pool) and a linear 5-way head, 15 query examples per class, meta-batch 32,
second-order meta-gradients, inner SGD rate 0.4, Adam 1e-3 as the outer step; 1 and
5 inner steps. The inputs are random 28x28x1 images drawn from a class-indexed pool
(no data set is needed for a speed measurement). iMAML (Rajeswaran et al. 2019)
runs the same network and inner steps with lambda = 2 and 5 conjugate-gradient steps;
it uses the same inner rate as MAML so that only the meta-gradient differs.

Timing: ``warmup`` untimed meta-steps, then the median of ``steps`` timed ones, in
each of ``repetitions`` rounds that interleave the workloads (as in
shared/notes/cpu-baseline.md: 20 steps, 3 repetitions, torch threads = 2).
"""


def get_config():
    return dict(
        ways=5,
        shots=1,
        queries=15,
        tasks=32,
        image=(28, 28, 1),
        pool=(100, 20),  # [classes, examples] of random images to draw episodes from
        filters=64,
        blocks=4,  # conv blocks (the smoke test uses fewer)
        inner_lr=0.4,
        inner_steps=(1, 5),
        learning_rate=1e-3,
        proximal=2.0,  # iMAML's lambda
        cg_steps=5,
        methods=("maml", "imaml", "learn2learn"),
        # How the metajax step goes over the meta-batch: "auto" is metajax's default
        # (one task at a time on the CPU, all at once on accelerators); "vmap" all tasks
        # at once; "map" chunks of map_batch_size tasks (make_train_step's task_chunk).
        task_map="auto",
        map_batch_size=4,
        # "auto": metajax.conv4's default (im2col for per-task weights on the CPU, XLA's
        # convolution elsewhere); "conv": XLA's convolution; "im2col": patches and a matmul.
        conv="auto",
        steps=20,
        warmup=2,
        repetitions=3,
        torch_threads=2,
        seed=0,
    )
