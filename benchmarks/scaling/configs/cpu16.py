"""Forced host devices on a many-core host (the GPU machine's 16 cores): up to 8."""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        label="16-core host", devices=(1, 2, 4, 8), tasks_per_device=2, meta_batch=16, steps=5
    )
    return config
