"""Smoke tests: each method trains a step and evaluates, on generated Omniglot-shaped data."""

import jax
import numpy as np
import pytest
from harness.testing import import_own, use_fake_data

import metajax as mj

train, default = import_own(__file__, "train", "configs.default")


def test_imaml_record_is_complete(monkeypatch):
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(methods=("iMAML",), ways=(5,), steps={5: 1}, tasks={5: 1})
    config.update(eval_episodes=2, queries=1, log_every=1)
    config["imaml"][5].update(inner_steps=2)
    config.update(imaml_released_test=dict(test_proximal=0.0, test_inner_steps=3))
    ((record, released),) = train.run(config, progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.9916 and record["steps"] == 1
    assert 0.0 <= record["value"] <= 1.0 and record["final_cg_residual"] is not None
    # The same meta-parameters, adapted at test as the authors' released code does.
    assert released["method"] == "iMAML, tested with lambda 0 and 3 steps"
    assert {k: v for k, v in released.items() if k not in ("method", "value", "ci95")} == {
        k: v for k, v in record.items() if k not in ("method", "value", "ci95")
    }


def test_reptile_record_is_complete(monkeypatch):
    """Reptile trains a step on its 10 training shots (and its own optimizer and meta-batch)
    and evaluates on 1 shot."""
    use_fake_data(monkeypatch, train)
    config = default.get_config()
    config.update(methods=("Reptile",), ways=(5,), shots=(1,))
    config.update(steps={5: 1}, eval_episodes=2, queries=1, log_every=1)
    config["reptile"].update(tasks=1, inner_steps=1, test_inner_steps=2)
    ((record,),) = train.run(config, progress=False)
    assert record["setting"] == "5w1s" and record["paper"] == 0.9768 and record["steps"] == 1
    assert record["train_shots"] == 10 and record["tasks"] == 1
    assert record["transductive"] is True and 0.0 <= record["value"] <= 1.0


@pytest.mark.parametrize(
    "method, params", [("Meta-SGD", {"model", "inner_lr"}), ("ANIL", {"body", "head"})]
)
def test_metasgd_and_anil_are_built_with_a_head_per_way(method, params):
    config = default.get_config()
    episode = mj.sample_episode(
        jax.random.key(0), np.zeros((20, 3, 28, 28, 1), np.float32), ways=20, shots=1, queries=1
    )
    learner = train.learner_for(method, 20, config)
    shapes = jax.eval_shape(learner.init, jax.random.key(1), episode)
    assert set(shapes) == params
    head = shapes["head"] if method == "ANIL" else shapes["model"]["Dense_0"]
    assert head["kernel"].shape[-1] == head["bias"].shape[-1] == 20


def test_unknown_methods_are_refused_by_name():
    config = default.get_config()
    config.update(methods=("MAML", "Reptyle"))
    with pytest.raises(ValueError, match="methods must be among .*'Reptyle'"):
        next(train.run(config, progress=False))
