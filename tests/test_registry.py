"""The learner registry: every learner registered once, with its paper's defaults."""

from __future__ import annotations

import inspect
import json

import jax.numpy as jnp
import numpy as np
import pytest

import metajax
from metajax.core import registry
from metajax.core.registry import ByDataset, LearnerSpec, SameAs


def test_every_exported_learner_factory_is_registered_once():
    factories = {
        name
        for name in metajax.__all__
        if inspect.isfunction(getattr(metajax, name))
        and inspect.signature(getattr(metajax, name)).return_annotation == "Learner"
    }
    registered = [spec.factory.__name__ for spec in registry.specs()]
    assert factories == set(registered), factories ^ set(registered)
    assert all(getattr(metajax, spec.factory.__name__) is spec.factory for spec in registry.specs())
    assert len(registry.names()) == len(set(registry.names())) == 17


def test_families_and_heads():
    assert registry.names("metric") == (
        "protonet", "matching", "relation", "siamese", "tapnet", "idemenet",
    )  # fmt: skip
    assert registry.names("model") == ("mann", "lstm", "snail", "metanet")
    assert registry.names("optimization") == (
        "maml", "fomaml", "imaml", "reptile", "metasgd", "anil", "finetune",
    )  # fmt: skip
    fixed = {s.name for s in registry.specs() if s.fixed_ways}
    assert fixed == {*registry.names("model"), *registry.names("optimization")}
    assert {s.name for s in registry.specs() if s.fixed_shots} == {"snail"}
    assert {s.name for s in registry.specs() if s.regression} == set(registry.names("optimization"))
    with pytest.raises(ValueError, match="family must be one of"):
        registry.names("memory")


@pytest.mark.parametrize("spec", registry.specs(), ids=registry.names())
def test_registered_defaults_are_the_factorys(spec):
    """A plain default is the factory's own; the dataset-aware ones say which dataset differs."""
    parameters = inspect.signature(spec.factory).parameters
    for option, default in spec.options.items():
        if spec.name == "fomaml":  # **hyperparameters, passed on to maml
            parameters = inspect.signature(metajax.maml).parameters
        if isinstance(default, ByDataset):
            default = default.default
        if isinstance(default, SameAs):  # iMAML: test_inner_steps=None means inner_steps
            assert parameters[option].default is None
            continue
        assert parameters[option].default == default, option


def test_dataset_aware_defaults():
    """Finn et al. adapt at 0.4 on Omniglot and at 0.01 on sinusoids."""
    for name in ("maml", "fomaml", "anil"):
        assert registry.run_config(name, dataset="omniglot")["inner_lr"] == 0.4
        assert registry.run_config(name, dataset="sinusoid")["inner_lr"] == 0.01
    config = registry.run_config("imaml", inner_steps=3)
    assert config["test_inner_steps"] == 3 and config["proximal"] == 2.0
    assert registry.run_config("reptile")["lr"] == 1.0
    assert registry.run_config("protonet")["lr"] == 1e-3
    assert registry.run_config("maml", inner_lr=0.2)["inner_lr"] == 0.2


@pytest.mark.parametrize(
    "name, settings, message",
    [
        ("protonet", {"proximal": 1.0}, "proximal does not apply to protonet"),
        ("maml", {"inner_lr": -1.0}, "inner_lr must be a finite float > 0, got -1.0"),
        ("maml", {"inner_steps": 0}, "inner_steps must be a finite int >= 1, got 0"),
        ("maml", {"lr": 0.0}, "lr must be a finite float > 0, got 0.0"),
        ("tapnet", {}, "learner tapnet needs a multivariate time-series dataset"),
        ("idemenet", {"inputs": "vectors"}, "learner idemenet needs an image dataset"),
        ("protonet", {"dataset": "sinusoid"}, "learner protonet classifies"),
        ("protonet", {"inputs": "vectors", "model": "conv4"}, "model must be one of ('mlp',)"),
        ("gpt", {}, "learner must be one of ('protonet'"),
    ],
)
def test_run_config_refuses_what_does_not_fit(name, settings, message):
    with pytest.raises(ValueError) as error:
        registry.run_config(name, **settings)
    assert message in str(error.value)


def test_register_refuses_a_second_entry_or_an_unknown_family():
    spec = registry.get("protonet")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(spec)
    with pytest.raises(ValueError, match="family must be one of"):
        registry.register(spec._replace(name="x", family="memory"))
    with pytest.raises(ValueError, match="unknown options"):
        registry.register(spec._replace(name="x", options={"momentum": 0.9}))
    assert "x" not in registry.names()


@pytest.mark.parametrize("spec", registry.specs(), ids=registry.names())
def test_every_learner_builds_small_from_a_run_config(spec):
    inputs = spec.inputs[0]
    config = registry.run_config(spec.name, inputs=inputs, series={"channels": 2, "length": 6})
    assert config["model"] == ("conv2" if inputs == "images" else "mlp")
    pool = np.zeros((3, 2, 8, 8, 1), np.float32)
    learner = spec.build(config, pool)
    assert callable(learner.init) and callable(learner.predict)


def test_outer_optimizers():
    """Reptile: SGD at epsilon, annealed linearly to 0; the others Adam (model family clipped)."""
    config = registry.run_config("reptile", steps=4)
    optimizer = registry.get("reptile").optimizer(config)
    params, grads = jnp.ones(2), jnp.full(2, 0.5)
    state = optimizer.init(params)
    steps = []
    for _ in range(3):
        update, state = optimizer.update(grads, state, params)
        steps.append(float(update[0]))
    assert np.allclose(steps, [-0.5, -0.375, -0.25])
    for name in ("mann", "maml"):
        optimizer = registry.get(name).optimizer(registry.run_config(name))
        update, _ = optimizer.update(jnp.full(2, 1e6), optimizer.init(params), params)
        assert np.allclose(update, -1e-3, rtol=1e-3)


def test_specs_are_named_tuples_and_configs_are_json():
    spec = registry.get("maml")
    assert isinstance(spec, LearnerSpec) and spec.paper.startswith("Finn")
    config = registry.run_config("tapnet", inputs="series", series={"channels": 2, "length": 6})
    assert json.loads(json.dumps(config)) == config
