"""The checks every registered learner passes: registering a learner enrols it here.

Each learner runs on small inputs (3-way 1-shot episodes of 16-dim vectors; 8x8x1
images for IDeMe-Net, whose deformations need images; short series for TapNet) with
its inner loops shortened, so that the whole file runs in a few CPU minutes. Each
learner's programs compile once, in a module-scoped fixture, and every test reuses
them. What is specific to a paper (its equations, NumPy references, learning) stays in
that learner's own test file.
"""

from __future__ import annotations

import inspect
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import metajax
from metajax import Episode, Learner, compiler_options, pool_sampler
from metajax.core import registry

WAYS, SHOTS, QUERIES = 3, 1, 2
# Shortened inner loops: the checks need the code paths, not the papers' step counts.
SMALL_OPTIONS = {"inner_steps": 2, "test_inner_steps": 2, "cg_steps": 2}
SERIES = {"channels": 2, "length": 8}


def _inputs(spec) -> str:
    return next(kind for kind in ("vectors", "images", "series") if kind in spec.inputs)


def _pool(kind: str) -> np.ndarray:
    """A random class-indexed pool ``[classes, examples, *features]`` of ``kind`` inputs."""
    rng = np.random.default_rng(0)
    shape = {"vectors": (16,), "images": (8, 8, 1), "series": (SERIES["length"], 3)}[kind]
    pool = rng.normal(size=(2 * WAYS, 4, *shape)).astype(np.float32)
    if kind == "series":
        pool[..., -1] = 1.0  # the last feature is the 0/1 mask of observed time steps
    return pool


class Case(typing.NamedTuple):
    """One learner and its compiled programs, shared by this file's tests."""

    name: str
    learner: Learner
    episodes: list  # three episodes of the same shapes
    params: typing.Any
    loss: typing.Callable  # jitted
    predict: typing.Callable  # jitted
    traces: dict  # how many times each was traced


@pytest.fixture(scope="module", params=registry.names())
def case(request) -> Case:
    spec = registry.get(request.param)
    kind = _inputs(spec)
    options = {k: v for k, v in SMALL_OPTIONS.items() if k in spec.options}
    config = registry.run_config(
        spec.name,
        inputs=kind,
        ways=WAYS,
        shots=SHOTS,
        queries=QUERIES,
        series=SERIES if kind == "series" else None,
        **options,
    )
    pool = _pool(kind)
    learner = spec.build(config, train_pool=pool)
    sampler = pool_sampler(pool, ways=WAYS, shots=SHOTS, queries=QUERIES)
    sample = jax.jit(sampler.sample)
    episodes = [sample(jax.random.key(i), sampler.data) for i in range(3)]
    params = learner.init(jax.random.key(10), episodes[0])
    # Counted per learner (chex.assert_max_traces keys its count by the source line,
    # which every learner here shares).
    traces = {"loss": 0, "predict": 0}

    def loss(p, e, k):
        traces["loss"] += 1
        return learner.loss(p, e, k)

    def predict(p, s, q, k):
        traces["predict"] += 1
        return learner.predict(p, s, q, k)

    return Case(spec.name, learner, episodes, params, jax.jit(loss), jax.jit(predict), traces)


def _floating(tree):
    return [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)]


def test_shapes_of_init_loss_and_predict(case):
    episode = case.episodes[0]
    assert _floating(case.params), f"{case.name}: init gave no trainable parameters"
    assert all(np.isfinite(a).all() for a in _floating(case.params))
    value, metrics = case.loss(case.params, episode, jax.random.key(1))
    assert value.shape == () and np.isfinite(value)
    assert isinstance(metrics, dict) and metrics
    assert all(jnp.shape(m) == () for m in metrics.values()), jax.tree.map(jnp.shape, metrics)
    logits = case.predict(case.params, episode.support, episode.query.x, jax.random.key(2))
    assert logits.shape == (WAYS * QUERIES, WAYS)
    assert np.isfinite(logits).all()


def test_vmap_over_tasks(case):
    batch = jax.tree.map(lambda *a: jnp.stack(a), *case.episodes[:2])
    keys = jax.random.split(jax.random.key(3), 2)
    values, metrics = jax.jit(jax.vmap(case.learner.loss, in_axes=(None, 0, 0)))(
        case.params, batch, keys
    )
    logits = jax.jit(jax.vmap(case.learner.predict, in_axes=(None, 0, 0, 0)))(
        case.params, batch.support, batch.query.x, keys
    )
    assert values.shape == (2,) and all(m.shape == (2,) for m in metrics.values())
    assert logits.shape == (2, WAYS * QUERIES, WAYS)
    for i, episode in enumerate(case.episodes[:2]):
        one, _ = case.loss(case.params, episode, keys[i])
        np.testing.assert_allclose(values[i], one, rtol=2e-5, atol=2e-5)
        alone = case.predict(case.params, episode.support, episode.query.x, keys[i])
        np.testing.assert_allclose(logits[i], alone, rtol=2e-4, atol=2e-4)


def test_a_second_call_does_not_retrace(case):
    # Other tests call case.loss and case.predict too, all with these shapes.
    for episode, seed in zip(case.episodes, (4, 5, 6), strict=True):
        case.loss(case.params, episode, jax.random.key(seed))
        case.predict(case.params, episode.support, episode.query.x, jax.random.key(seed))
    assert case.traces == {"loss": 1, "predict": 1}


def test_same_key_same_result(case):
    again = case.learner.init(jax.random.key(10), case.episodes[0])
    jax.tree.map(np.testing.assert_array_equal, again, case.params)
    episode, key = case.episodes[1], jax.random.key(6)
    first = case.loss(case.params, episode, key)
    jax.tree.map(np.testing.assert_array_equal, case.loss(case.params, episode, key), first)
    logits = case.predict(case.params, episode.support, episode.query.x, key)
    np.testing.assert_array_equal(
        case.predict(case.params, episode.support, episode.query.x, key), logits
    )


# Learners whose meta-gradient is, by design, not the derivative of their loss value:
# finite differences of the value cannot check it. Their own test files check it
# against its definition.
SURROGATE_GRADIENTS = {
    "fomaml": "first-order MAML drops the second-order terms (test_inner_loop.py)",
    "imaml": "the implicit gradient is exact only at the inner optimum (test_inner_loop.py)",
    "reptile": "the update is theta minus the adapted parameters (test_reptile.py)",
}


# Gradients that disagree with finite differences today: a bug to fix, not a design.
# strict: the test fails as soon as the gradient is right, so that the entry goes.
KNOWN_GRADIENT_BUGS = {
    "idemenet": "jit(grad(loss)) disagrees with central differences in float64 at the "
    "registry's sizes (64 filters, 3 deformation blocks on 8x8 images); it agrees at 3 "
    "filters, the size test_idemenet.py checks",
}


def test_surrogate_gradient_names_are_registered():
    assert set(SURROGATE_GRADIENTS) | set(KNOWN_GRADIENT_BUGS) <= set(registry.names())


def _trainer_gradient(f):
    """``f`` whose reverse-mode derivative is ``jit(value_and_grad(f))``, as the trainer's.

    check_grads then compares finite differences of ``f`` with the gradient that
    ``meta_train`` takes, compiled the way it compiles it (the gradient inside the jit,
    with its compiler options).
    """
    options = compiler_options()
    value = jax.jit(f, compiler_options=options)
    value_and_grad = jax.jit(jax.value_and_grad(f), compiler_options=options)

    @jax.custom_vjp
    def objective(params):
        return value(params)

    def backward(grads, cotangent):
        return (jax.tree.map(lambda g: cotangent * g, grads),)

    objective.defvjp(value_and_grad, backward)
    return objective


def test_loss_gradient_matches_finite_differences_in_float64(case, request):
    if case.name in KNOWN_GRADIENT_BUGS:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_GRADIENT_BUGS[case.name], strict=True))
    with jax.enable_x64(True):
        f64 = lambda tree: jax.tree.map(  # noqa: E731
            lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree
        )
        params, episode = f64(case.params), f64(case.episodes[2])
        key = jax.random.key(7)
        objective = _trainer_gradient(lambda p: case.learner.loss(p, episode, key)[0])
        if case.name in SURROGATE_GRADIENTS:
            grads = jax.grad(objective)(params)
            assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
            pytest.skip(f"{case.name}: {SURROGATE_GRADIENTS[case.name]}")
        # A small step: ReLU's kinks are common in these nets, and a wider central
        # difference can straddle one; float64 keeps its rounding error far below 1e-4.
        check_grads(objective, (params,), order=1, modes=("rev",), eps=1e-7, atol=1e-4, rtol=1e-4)


def _support(episode: Episode, **fields) -> Episode:
    return episode._replace(support=episode.support._replace(**fields))


def _query(episode: Episode, **fields) -> Episode:
    return episode._replace(query=episode.query._replace(**fields))


def _wider(x):
    return jnp.concatenate([x, x[..., :1]], axis=-1)


# Inputs no learner can take, as (function, what is wrong, the shared message, call):
# checked() (metajax.core.learner), which every factory's learner goes through, gives a
# ValueError naming the argument. ``call(learner, params, episode, key)`` gives the
# function and its arguments.
BAD_INPUTS = [
    ("init", "key is None", r"key must be a PRNG key", lambda lrn, p, ep, k: (lrn.init, None, ep)),
    (
        "init",
        "integer inputs",
        r"support\.x must have a floating-point dtype",
        lambda lrn, p, ep, k: (lrn.init, k, _support(ep, x=ep.support.x.astype(jnp.int32))),
    ),
    (
        "init",
        "not an episode",
        r"episode must be an Episode\(support, query\)",
        lambda lrn, p, ep, k: (lrn.init, k, tuple(ep.support)),
    ),
    (
        "loss",
        "not an episode",
        r"episode must be an Episode\(support, query\)",
        lambda lrn, p, ep, k: (lrn.loss, p, tuple(ep.support), k),
    ),
    (
        "loss",
        "support x and y of different lengths",
        r"support\.x and support\.y disagree on n",
        lambda lrn, p, ep, k: (lrn.loss, p, _support(ep, y=ep.support.y[:-1]), k),
    ),
    (
        "loss",
        "query x and y of different lengths",
        r"query\.x and query\.y disagree on n",
        lambda lrn, p, ep, k: (lrn.loss, p, _query(ep, y=ep.query.y[:-1]), k),
    ),
    (
        "loss",
        "support labels of rank 2",
        r"support\.y must be integer labels of shape \[n\]",
        lambda lrn, p, ep, k: (lrn.loss, p, _support(ep, y=ep.support.y[:, None]), k),
    ),
    (
        "loss",
        "query features other than the support's",
        # checked()'s "query.x features ... differ from support's", or the learner's own
        # layout check that checked() runs first (TapNet's series): both name query.x.
        r"query\.x\b",
        lambda lrn, p, ep, k: (lrn.loss, p, _query(ep, x=_wider(ep.query.x)), k),
    ),
    (
        "predict",
        "query_x with other features than the support's",
        r"query_x\b",
        lambda lrn, p, ep, k: (lrn.predict, p, ep.support, _wider(ep.query.x), k),
    ),
    (
        "predict",
        "support x and y of different lengths",
        r"support\.x and support\.y disagree on n",
        lambda lrn, p, ep, k: (
            lrn.predict,
            p,
            ep.support._replace(y=ep.support.y[:-1]),
            ep.query.x,
            k,
        ),
    ),
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[f"{fn}: {what}" for fn, what, *_ in BAD_INPUTS])
def test_bad_input_gives_the_shared_error_naming_the_argument(case, bad):
    _, _, match, call = bad
    fn, *args = call(case.learner, case.params, case.episodes[0], jax.random.key(8))
    with pytest.raises(ValueError, match=match):
        # Under eval_shape the arrays are tracers: the checks must be static to fire.
        jax.eval_shape(fn, *args)


def _returns_learner(obj) -> bool:
    """Whether ``obj`` is a learner factory: a function annotated to return a Learner."""
    if not inspect.isfunction(obj):
        return False
    # The modules use postponed annotations: the annotation is the string "Learner".
    return inspect.signature(obj).return_annotation in ("Learner", Learner)


def test_every_exported_learner_factory_is_registered():
    exported = {name: getattr(metajax, name) for name in metajax.__all__}
    factories = {name for name, obj in exported.items() if _returns_learner(obj)}
    assert {"maml", "protonet", "snail"} <= factories  # the detection itself works
    registered = {spec.factory for spec in registry.specs()}
    missing = sorted(name for name in factories if exported[name] not in registered)
    assert not missing, f"exported from metajax but not registered: {missing}"
    # And the other way: what is registered is public.
    hidden = sorted(s.name for s in registry.specs() if s.factory not in exported.values())
    assert not hidden, f"registered but not exported from metajax: {hidden}"
