"""Smoke tests on generated Omniglot-shaped data: each side trains two tiny steps and
evaluates after each; the records pair them."""

import pytest
from harness.testing import import_own, use_fake_data

train, default = import_own(__file__, "train", "configs.default")


def tiny_config(**overrides):
    config = default.get_config()
    config.update(filters=4, blocks=2, queries=1, tasks=1, steps=2, eval_at=(1, 2))
    config.update(eval_episodes=2, torch_threads=1, **overrides)
    return config


def test_metajax_side_evaluates_at_every_given_step(monkeypatch, tmp_path):
    use_fake_data(monkeypatch, train)
    config = tiny_config()
    pools = train.export_pools(config, None, tmp_path)
    evaluations = train.train_metajax(config, "FOMAML", pools)
    assert [e["step"] for e in evaluations] == [1, 2]
    assert all(0.0 <= e["accuracy"] <= 1.0 and e["train_s"] > 0 for e in evaluations)


@pytest.mark.parametrize("method", ["MAML", "Meta-SGD", "ANIL"])
def test_both_sides_give_paired_records(monkeypatch, method):
    use_fake_data(monkeypatch, train)
    config = tiny_config(methods=(method,))
    try:
        records = [r for batch in train.run(config) for r in batch]
    except FileNotFoundError:
        pytest.skip("no PyTorch venv: bash benchmarks/maml_speed/setup_env.sh")
    assert [r["steps"] for r in records] == [1, 2]
    for r in records:
        assert r["baseline"] == f"{method} (learn2learn 0.2.0)" and r["transductive"] is True
        assert 0.0 <= r["baseline_value"] <= 1.0 and isinstance(r["within_cis"], bool)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(methods=("MAML", "Reptile")), "methods must be among .*'Reptile'"),
        (dict(eval_at=(0, 2)), r"eval_at must be steps in \[1, 2\], got \(0, 2\)"),
        (dict(init="kaiming"), r"config init must be 'flax' or 'torch', got 'kaiming'"),
    ],
)
def test_bad_config_is_refused_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        next(train.run(tiny_config(**overrides)))


def test_torch_like_init_draws_kernels_and_dense_biases_as_torch():
    import jax
    import numpy as np

    import metajax as mj

    x = np.zeros((2, 28, 28, 1), np.float32)
    learner = mj.metasgd(mj.conv4(outputs=5))
    episode = mj.Episode(mj.Split(x, np.arange(2)), mj.Split(x, np.arange(2)))
    params = learner.init(jax.random.key(0), episode)
    drawn = train.torch_like_init(params, jax.random.key(1))
    model, before = drawn["model"], params["model"]
    bound = 1 / np.sqrt(3 * 3 * 64)
    kernel = np.asarray(model["Conv_1"]["kernel"])
    assert np.abs(kernel).max() <= bound and kernel.std() == pytest.approx(bound / 3**0.5, 0.05)
    head_bias = np.asarray(model["Dense_0"]["bias"])
    assert np.abs(head_bias).max() <= 1 / 8 and np.abs(head_bias).max() > 0
    # Batch norm's scale and offset and Meta-SGD's rates are kept.
    np.testing.assert_array_equal(
        model["BatchStatNorm_0"]["scale"], before["BatchStatNorm_0"]["scale"]
    )
    np.testing.assert_array_equal(
        drawn["inner_lr"]["Conv_0"]["kernel"], params["inner_lr"]["Conv_0"]["kernel"]
    )
    assert jax.tree.structure(drawn) == jax.tree.structure(params)
