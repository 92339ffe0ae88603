"""On an accelerator machine: its real devices, and a larger per-device meta-batch."""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        platform="accelerator",
        devices=(1, 2, 4, 8),
        tasks_per_device=32,
        meta_batch=64,
        warmup=2,
        steps=20,
    )
    return config
