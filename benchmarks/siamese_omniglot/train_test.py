"""Smoke test of the benchmark: a few steps end to end, on generated Omniglot-shaped data
(Lake's protocol: alphabets of 20 characters to draw the one-shot runs from)."""

import pytest
from harness.testing import LAKE_ALPHABETS, import_own, use_fake_data

train, default, paper, ablation, snell = import_own(
    __file__,
    "train",
    "configs.default",
    "configs.paper",
    "configs.ablation",
    "configs.snell_episodes",
)

METHODS = {
    "paper": ["Siamese"],
    "ablation": [
        "Siamese",
        "Siamese encoder, nearest prototype",
        "Siamese (episode objective)",
        "Siamese (episode objective) encoder, nearest prototype",
        "ProtoNet (same episodes and steps)",
    ],
}


def test_default_trains_koch_beside_protonet():
    # Its run is the ablation's, longer (the ablation's test covers the code).
    config = default.get_config()
    assert config["objectives"][0] == "verification" and config["compare_protonet"]
    assert config["tag"] is None and ablation.get_config()["tag"]
    # Snell's episodes differ from the default's in the sampler alone (and the schedule).
    wide = snell.get_config()
    assert wide["sampler"] == "random" and wide["objectives"] == config["objectives"]


@pytest.mark.parametrize("config_module", [paper, ablation], ids=["paper", "ablation"])
def test_run_writes_complete_records(config_module, monkeypatch):
    use_fake_data(monkeypatch, train)
    config = config_module.get_config()
    config.update(train_ways=5, queries=1, pairs=8, steps=2, eval_episodes=4, log_every=1)
    records = [record for (record,) in train.run(config, progress=False)]
    name = config_module.__name__.rsplit(".", 1)[-1]
    assert [r["method"] for r in records] == METHODS[name]
    tag = ", ablation, 500 steps" if name == "ablation" else ""
    for record in records:
        assert record["setting"] == "20w1s-within-alphabet" + tag
        assert 0.0 <= record["value"] <= 1.0 and record["ci95"] >= 0.0
        assert record["transductive"] is True  # Conv-4's batch norm over the query set
        assert record["steps"] == 2 and record["test_trials"] == 80
        assert record["test_alphabets"] == LAKE_ALPHABETS["test"][0]
    assert records[0]["paper"] == 0.92 and all(r["paper"] is None for r in records[1:])


def test_random_sampler_draws_n_way_episodes(monkeypatch):
    import jax

    use_fake_data(monkeypatch, train)
    config = snell.get_config()
    config.update(train_ways=7, queries=3)
    sampler, setting, _, _ = train.load_data(config)
    episode = sampler.sample(jax.random.key(0), sampler.data)
    assert setting == "7w1s3q"
    assert episode.support.x.shape[0] == 7 and episode.query.x.shape[0] == 21


def test_rotations_add_each_character_turned_as_classes_of_their_own(monkeypatch):
    import numpy as np

    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(train_ways=5, queries=1)
    plain, plain_setting, _, _ = train.load_data(config)
    config.update(rotations=True)
    turned, setting, _, _ = train.load_data(config)
    assert setting == plain_setting + ", rotations as classes"
    pool, table, sizes = (np.asarray(a) for a in turned.data)
    original = np.asarray(plain.data[0])
    assert pool.shape[0] == 4 * original.shape[0]
    np.testing.assert_array_equal(pool[original.shape[0]], np.rot90(original[0], 1, axes=(1, 2)))
    # Four times the alphabets, none mixing turned and upright characters.
    assert len(sizes) == 4 * len(np.asarray(plain.data[2]))
    for row, size in zip(table, sizes, strict=True):
        assert len(set(row[:size] // original.shape[0])) == 1
