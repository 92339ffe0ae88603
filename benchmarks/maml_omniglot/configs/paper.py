"""The papers' schedules, for a GPU: 60,000 meta-steps of meta-batch 32 (5-way) / 16 (20-way);
Reptile's 100,000 of meta-batch 5 (Nichol et al. 2018, Table 3)."""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        tasks={5: 32, 20: 16}, steps={5: 60_000, 20: 60_000}, log_every=100, convolution="xla"
    )
    config["reptile"].update(steps={5: 100_000, 20: 100_000})
    return config
