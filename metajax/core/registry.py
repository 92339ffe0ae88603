"""The learner registry: one entry per learner, read by the CLI and the conformance tests.

Adding a learner is its own module plus one :func:`register` call in its family's
``__init__.py`` (``metajax/learners/{metric,model,optimization}/__init__.py``); importing
:mod:`metajax.learners` (or :mod:`metajax`) registers every family. This module holds
data and lookups only: it imports nothing above ``metajax.core`` and knows nothing of
argparse.

API:

- :class:`LearnerSpec`, one per learner, with fields

  - ``name``: the CLI's ``--learner`` value, e.g. ``"maml"``.
  - ``family``: ``"metric"``, ``"model"`` or ``"optimization"`` (:data:`FAMILIES`).
  - ``paper``: who and where, e.g. ``"Finn, Abbeel & Levine, ICML 2017"``.
  - ``factory``: the exported factory, e.g. :func:`metajax.maml`.
  - ``build``: ``build(config, train_pool=None) -> Learner``, the learner that a complete
    run config (a dict from :func:`run_config`) describes. ``train_pool`` is the
    meta-train pool ``[classes, examples, *features]``; only ``idemenet`` needs it (its
    gallery of images) and raises ``ValueError`` without it; the others ignore it.
  - ``options``: ``{option: default}`` for the hyperparameters of :data:`OPTIONS` that the
    learner takes; a default is a value, a :class:`ByDataset` (the papers differ by
    dataset) or a :class:`SameAs` (another option's value).
  - ``inputs``: which of :data:`INPUTS` it accepts.
  - ``regression``: whether it can learn regression tasks (``sinusoid``).
  - ``fixed_ways``: its head has one output per way, so test ways must equal training ways.
  - ``fixed_shots``: its network is sized by the shots (SNAIL's sequence length).
  - ``lr``: the default outer learning rate.
  - ``optimizer``: ``optimizer(config) -> optax.GradientTransformation``, the outer
    optimizer, from the config's ``lr``, ``steps`` and ``decay_every``.

- :func:`register` adds a spec, :func:`get` finds one by name (a ``ValueError`` lists
  the names), :func:`names` and :func:`specs` list them in registration order,
  optionally of one family.
- :func:`run_config` checks settings and returns the complete run config (every option
  at its dataset-aware default unless given). It is what ``metajax train`` saves as
  ``config.json``, less the CLI's own keys. :func:`check_setting` says whether test
  episodes of other ways or shots fit a learner (``fixed_ways``, ``fixed_shots``).
- Helpers for builders and the CLI: :func:`backbone` (the config's backbone as a factory
  name and its arguments, which the families instantiate), :func:`hyperparameters` (the
  config's option values, for the factory), :func:`is_regression`, :func:`input_kind`,
  :func:`pool_settings` and :func:`auto_model` (what a data pool holds and fits).

Small instances for tests: ``run_config(name, inputs=...)`` picks the small backbone,
``"mlp"`` (hidden 128-128) for vectors and series, ``"conv2"`` (two conv blocks) for
images, with 5 ways, 1 shot and 1 query by default. Episodes by input kind:

- ``"vectors"``: ``x`` is ``[n, features]`` float.
- ``"images"``: ``x`` is ``[n, 8, 8, 1]`` (or larger) float; ``idemenet`` also needs a
  ``train_pool`` of such images, ``[classes, examples, 8, 8, 1]``.
- ``"series"``: ``x`` is ``[n, length, channels + 1]`` with a 0/1 mask as the last
  feature; pass ``series=dict(channels=..., length=...)`` (``tapnet`` needs it).

Labels are ``0..ways-1`` for classification; a regression config (``dataset="sinusoid"``)
gives the optimization learners one output. A learner is built for episodes of the
config's ``ways``, ``shots`` and ``queries``: the heads (model and optimization families)
are sized by ``ways``, MANN and LSTM by ``shots + queries`` (instances per class), SNAIL by
``shots``; build again for other episodes, ``spec.build({**config, "queries": 3}, pool)``.

Example:
  >>> import metajax.learners  # registers every family
  >>> from metajax.core import registry
  >>> spec = registry.get("maml")
  >>> spec.family, spec.fixed_ways, "protonet" in registry.names("metric")
  ('optimization', True, True)
  >>> registry.run_config("maml", dataset="sinusoid", inputs="vectors")["inner_lr"]
  0.01
  >>> learner = spec.build(registry.run_config("maml", inputs="vectors", inner_steps=2))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import optax

FAMILIES = ("metric", "model", "optimization")
INPUTS = ("images", "vectors", "series")
# Backbones a config may name: Conv-4, its first two blocks (small images), an MLP.
MODELS = ("conv4", "conv2", "mlp")
REGRESSION = ("sinusoid",)
_NEEDS = {
    "images": "an image dataset",
    "vectors": "a vector dataset",
    "series": "a multivariate time-series dataset (uea:NAME)",
}


class Option(NamedTuple):
    """A hyperparameter that learners may declare: its type and smallest value."""

    kind: type
    low: float
    low_open: bool
    help: str


# Every option a spec may declare; one meaning each, whichever learner takes it.
OPTIONS = {
    "inner_lr": Option(float, 0, True, "inner SGD step size"),
    "inner_steps": Option(int, 1, False, "inner steps at training"),
    "test_inner_steps": Option(int, 1, False, "inner steps at test"),
    "proximal": Option(float, 0, True, "iMAML's lambda"),
    "cg_steps": Option(int, 1, False, "iMAML's conjugate-gradient steps"),
}


class ByDataset(NamedTuple):
    """A default that the papers set per dataset: ``overrides[dataset]``, else ``default``."""

    default: Any
    overrides: Mapping[str, Any]

    def __call__(self, config: Mapping) -> Any:
        return self.overrides.get(config["dataset"], self.default)


class SameAs(NamedTuple):
    """A default that is another option's value (iMAML tests with its training steps)."""

    option: str

    def __call__(self, config: Mapping) -> Any:
        return config[self.option]


def adam(config: Mapping) -> optax.GradientTransformation:
    """Adam at ``lr``, halved every ``decay_every`` steps (Snell et al.'s schedule)."""
    return optax.adam(
        optax.exponential_decay(config["lr"], config["decay_every"], 0.5, staircase=True)
    )


class LearnerSpec(NamedTuple):
    """One learner's entry; see the module docstring for every field."""

    name: str
    family: str
    paper: str
    factory: Callable
    build: Callable
    options: Mapping[str, Any] = {}
    inputs: tuple[str, ...] = INPUTS
    regression: bool = False
    fixed_ways: bool = False
    fixed_shots: bool = False
    lr: float = 1e-3
    optimizer: Callable[[Mapping], optax.GradientTransformation] = adam


_SPECS: dict[str, LearnerSpec] = {}


def register(spec: LearnerSpec) -> LearnerSpec:
    """Adds ``spec``; a name registered twice or an unknown family or option is an error."""
    if spec.name in _SPECS:
        raise ValueError(f"learner {spec.name!r} is already registered")
    if spec.family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {spec.family!r}")
    unknown = sorted(set(spec.options) - set(OPTIONS)) + sorted(set(spec.inputs) - set(INPUTS))
    if unknown or not spec.inputs:
        raise ValueError(f"{spec.name}: unknown options or inputs {unknown or spec.inputs}")
    _SPECS[spec.name] = spec
    return spec


def get(name: str) -> LearnerSpec:
    """The spec registered as ``name``."""
    if name not in _SPECS:
        raise ValueError(f"learner must be one of {names()}, got {name!r}")
    return _SPECS[name]


def specs(family: str | None = None) -> tuple[LearnerSpec, ...]:
    """Every spec (of ``family`` if given), in registration order."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return tuple(s for s in _SPECS.values() if family in (None, s.family))


def names(family: str | None = None) -> tuple[str, ...]:
    """The registered names (of ``family`` if given), in registration order."""
    return tuple(s.name for s in specs(family))


def is_regression(config: Mapping) -> bool:
    return config["dataset"] in REGRESSION


def input_kind(pool) -> str:
    """What a meta-train pool holds: images ``[c, e, h, w, ch]``, series, or vectors."""
    ndim = 3 if pool is None else pool.ndim  # None: sinusoid, sampled on the fly
    return {5: "images", 4: "series"}.get(ndim, "vectors")


def pool_settings(pool) -> dict:
    """``inputs`` and ``series`` of :func:`run_config` for a meta-train pool (``None``: sinusoid).

    A series pool is ``[classes, examples, length, channels + mask]`` (see
    :mod:`metajax.datasets.uea`).
    """
    inputs = input_kind(pool)
    if inputs != "series":
        return {"inputs": inputs}
    return {"inputs": inputs, "series": {"channels": pool.shape[-1] - 1, "length": pool.shape[-2]}}


def auto_model(pool) -> str:
    """Conv-4 for images of at least 16x16, its first two blocks for smaller, else an MLP.

    Conv-4 needs 16x16 for its four poolings; two blocks fit the 8x8 digits (71% against
    an MLP's 60% there).
    """
    if input_kind(pool) != "images":
        return "mlp"
    side = min(pool.shape[2:4])
    return "conv4" if side >= 16 else "conv2" if side >= 4 else "mlp"


def backbone(config: Mapping) -> tuple[str, dict]:
    """``(factory name, keyword arguments)`` of the config's backbone, for the families.

    ``conv2`` is ``conv4(blocks=2)``; the MLP is Finn et al.'s 40-40 on regression and
    128-128 on classification.
    """
    if config["model"] == "mlp":
        return "mlp", {"hidden": (40, 40) if is_regression(config) else (128, 128)}
    return "conv4", {"blocks": 2 if config["model"] == "conv2" else 4}


def check_option(name: str, value, option: Option | None = None) -> None:
    """``value`` is a finite number of option ``name``'s type, at least its smallest value."""
    option = option or OPTIONS[name]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and (option.kind is float or isinstance(value, int)) and math.isfinite(value)
    if not ok or value < option.low or (option.low_open and value == option.low):
        bound = f"{'>' if option.low_open else '>='} {option.low}"
        raise ValueError(f"{name} must be a finite {option.kind.__name__} {bound}, got {value!r}")


def check_setting(config: Mapping, ways, shots, *, prefix: str = "test_") -> None:
    """Episodes of ``ways`` and ``shots`` fit a learner trained as ``config`` says.

    A head with one output per way tests at the training ways, SNAIL at the training
    shots; ``prefix`` names the setting in the message (``"test_"``, or a flag's ``"--"``).
    """
    spec = get(config["learner"])
    for fixed, name, value, why in (
        (spec.fixed_ways, "ways", ways, "whose head has one output per way"),
        (spec.fixed_shots, "shots", shots, "whose temporal convolutions are sized by the shots"),
    ):
        if fixed and value != config[name]:
            raise ValueError(
                f"{prefix}{name} must equal {name}={config[name]} for {spec.name}, {why}; "
                f"got {value}"
            )


def hyperparameters(config: Mapping) -> dict:
    """The config's values of the options its learner declares, for its factory."""
    return {k: config[k] for k in get(config["learner"]).options}


def run_config(
    name: str,
    *,
    dataset: str = "digits",
    inputs: str | None = None,
    model: str | None = None,
    ways: int | None = 5,
    shots: int = 1,
    queries: int = 1,
    seed: int = 0,
    steps: int = 1000,
    decay_every: int = 2000,
    lr: float | None = None,
    series: Mapping[str, int] | None = None,
    test_ways: int | None = None,
    test_shots: int | None = None,
    test_queries: int | None = None,
    **options,
) -> dict:
    """The complete run config of learner ``name``: what ``spec.build`` and ``spec.optimizer`` read.

    Args:
      name: a registered learner.
      dataset: the dataset's name; it selects dataset-aware defaults and regression
        (``"sinusoid"``).
      inputs: one of :data:`INPUTS`; ``"vectors"`` for regression, else ``"images"``,
        by default.
      model: one of :data:`MODELS`; the small one by default (``"conv2"`` for images,
        ``"mlp"`` otherwise).
      ways: classes per episode (``None`` for regression).
      shots, queries: examples per class in the support and query sets.
      seed: the run's seed (TapNet's channel groups).
      steps, decay_every, lr: the outer optimizer's; ``lr=None`` is the spec's default.
      series: ``{"channels": ..., "length": ...}`` of time-series inputs.
      test_ways, test_shots, test_queries: the meta-test episodes; the training ones by
        default (see :func:`check_setting`).
      **options: values for the spec's options; the rest take their defaults.

    Raises:
      ValueError: an option the learner does not take or out of range, inputs or a
        dataset the learner cannot learn, a model that does not fit the inputs.
    """
    spec = get(name)
    regression = dataset in REGRESSION
    inputs = inputs or ("vectors" if regression else "images")
    model = model or ("conv2" if inputs == "images" else "mlp")
    if inputs not in spec.inputs:
        needs = " or ".join(_NEEDS[k] for k in spec.inputs)
        raise ValueError(f"learner {name} needs {needs}, got dataset {dataset!r}")
    if regression and not spec.regression:
        raise ValueError(f"learner {name} classifies; it cannot learn regression ({dataset!r})")
    if model not in MODELS or (model != "mlp" and inputs != "images"):
        fits = MODELS if inputs == "images" else ("mlp",)
        raise ValueError(f"model must be one of {fits} for {inputs}, got {model!r}")
    unused = sorted(set(options) - set(spec.options))
    if unused:
        raise ValueError(f"{unused[0]} does not apply to {name}")
    lr = spec.lr if lr is None else lr
    check_option("lr", lr, OPTIONS["inner_lr"])
    ways = None if regression else ways
    config = dict(
        learner=name, dataset=dataset, inputs=inputs, model=model, ways=ways, shots=shots,
        queries=queries, seed=seed, steps=steps, decay_every=decay_every, lr=lr,
    )  # fmt: skip
    config.update(
        test_ways=None if regression else test_ways or ways,
        test_shots=test_shots or shots,
        test_queries=test_queries or queries,
    )
    check_setting(config, config["test_ways"], config["test_shots"])
    if series is not None:
        config["series"] = {k: int(series[k]) for k in ("channels", "length")}
    for option, default in spec.options.items():
        value = options.get(option)
        config[option] = (
            (default(config) if callable(default) else default) if value is None else value
        )
        check_option(option, config[option])
    return config
