"""Smoke test: iMAML's step memory does not grow with inner steps; MAML's does."""

from harness.testing import import_own

train, default = import_own(__file__, "train", "configs.default")


def test_memory_growth_on_a_small_meta_batch():
    config = default.get_config()
    # Two conv blocks: the same scan over inner steps (what grows for MAML and not for
    # iMAML) in half the program, which compiles in half the time.
    config.update(tasks=2, queries=2, filters=8, blocks=2)
    maml = [train.measure("MAML", s, config)["peak_bytes"] for s in (1, 4)]
    imaml = [train.measure("iMAML", s, config)["peak_bytes"] for s in (1, 4)]
    assert maml[1] > 1.3 * maml[0]
    assert imaml[1] <= 1.2 * imaml[0]
