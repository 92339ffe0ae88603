"""The paper's schedule: the default already is (70,000 meta-steps); kept for symmetry."""

from configs import default


def get_config():
    return default.get_config()
