"""Smoke test: iMAML trains a step and evaluates, on generated Omniglot-shaped data."""

from harness.testing import import_own, use_fake_data

train, default = import_own(__file__, "train", "configs.default")


def test_imaml_record_is_complete(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(methods=("iMAML",), ways=(5,), steps={5: 1}, tasks={5: 1})
    config.update(eval_episodes=2, queries=1, log_every=1)
    config["imaml"][5].update(inner_steps=2)
    ((record,),) = train.run(config, progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.9916 and record["steps"] == 1
    assert 0.0 <= record["value"] <= 1.0 and record["final_cg_residual"] is not None
