"""The CPU budget: 1, 2 and 4 forced host devices on this machine's cores.

Omniglot-shaped inputs (28x28x1, Conv-4 with 64 filters), 5-way 1-shot with 15
queries per class: the MAML paper's Omniglot task. Timing does not depend on the
pixels, so the pool is random rather than loaded (as in benchmarks/maml_speed).
"""


def get_config():
    return dict(
        platform="cpu",  # "cpu": forced host devices; "accelerator": the real devices
        label="",  # appended to the setting: keeps another host's rows apart
        devices=(1, 2, 4),
        learners=("protonet", "maml"),
        ways=5,
        shots=1,
        queries=15,
        filters=64,
        blocks=4,  # Conv-4
        image=28,
        pool=(100, 20),  # classes, examples per class
        inner_steps=1,  # MAML: Finn et al.'s Omniglot inner loop, second order
        inner_lr=0.4,
        # Weak scaling: each device keeps this many tasks, the meta-batch grows.
        tasks_per_device=2,
        # Strong scaling: this meta-batch, split over however many devices.
        meta_batch=8,
        warmup=1,
        steps=5,
    )
