import importlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metajax import Episode, Model, Split, mlp
from metajax.core.losses import regression_loss
from metajax.learners.optimization.anil import anil
from metajax.learners.optimization.finetune import finetune
from metajax.learners.optimization.imaml import imaml
from metajax.learners.optimization.inner_loop import (
    FirstOrder,
    Implicit,
    Unrolled,
    adapt,
    adapted_loss,
    conjugate_gradient,
)
from metajax.learners.optimization.maml import fomaml, maml
from metajax.learners.optimization.metasgd import metasgd
from metajax.learners.optimization.reptile import reptile

KEY = jax.random.key(0)

LINEAR = Model(init=lambda key, x: jnp.zeros(x.shape[1], x.dtype), apply=lambda w, x: x @ w)


def square_loss(w, split, key):
    return jnp.mean(jnp.square(split.x @ w - split.y))


def outer(w, split, key):
    return regression_loss(split.x @ w, split.y)


def linear_episode(seed=0, d=4, n_support=6, n_query=8):
    rng = np.random.default_rng(seed)
    xs, xq = rng.normal(size=(n_support, d)), rng.normal(size=(n_query, d))
    w_true = rng.normal(size=d)
    return Episode(
        Split(jnp.asarray(xs), jnp.asarray(xs @ w_true + 0.1 * rng.normal(size=n_support))),
        Split(jnp.asarray(xq), jnp.asarray(xq @ w_true)),
    )


def test_adapt_sgd_matches_a_python_loop():
    with jax.enable_x64(True):
        ep = linear_episode()
        theta = jnp.arange(4.0) / 10
        phi, losses = adapt(
            square_loss, theta, ep.support, jax.random.key(0), steps=3, learning_rate=0.05
        )
        w = theta
        for i in range(3):
            assert losses[i] == pytest.approx(float(square_loss(w, ep.support, None)))
            w = w - 0.05 * jax.grad(square_loss)(w, ep.support, None)
        np.testing.assert_allclose(phi, w, rtol=1e-12)


def test_adapt_with_optax_and_per_parameter_rates():
    with jax.enable_x64(True):
        ep = linear_episode()
        theta = jnp.zeros(4)
        phi, _ = adapt(
            square_loss, theta, ep.support, jax.random.key(0), steps=2, optimizer=optax.sgd(0.05)
        )
        ref, _ = adapt(
            square_loss, theta, ep.support, jax.random.key(0), steps=2, learning_rate=0.05
        )
        np.testing.assert_allclose(phi, ref, rtol=1e-12)
        rates = jnp.array([0.0, 0.1, 0.0, 0.1])
        phi, _ = adapt(
            square_loss, theta, ep.support, jax.random.key(0), steps=1, learning_rate=rates
        )
        assert phi[0] == 0 and phi[2] == 0 and phi[1] != 0


def test_conjugate_gradient_solves_spd_systems_exactly():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        m = rng.normal(size=(5, 5))
        a = jnp.asarray(m @ m.T + 5 * np.eye(5))
        b = {"u": jnp.asarray(rng.normal(size=3)), "v": jnp.asarray(rng.normal(size=2))}

        def matvec(t):
            flat = a @ jnp.concatenate([t["u"], t["v"]])
            return {"u": flat[:3], "v": flat[3:]}

        x, residual = conjugate_gradient(matvec, b, steps=5)
        np.testing.assert_allclose(
            jnp.concatenate([x["u"], x["v"]]),
            np.linalg.solve(a, np.concatenate([b["u"], b["v"]])),
            rtol=1e-10,
        )
        assert residual < 1e-10
        _, early = conjugate_gradient(matvec, b, steps=1)
        assert early > 1e-3


def exact_imaml_gradient(theta, ep, lam):
    xs, ys = np.asarray(ep.support.x), np.asarray(ep.support.y)
    xq, yq = np.asarray(ep.query.x), np.asarray(ep.query.y)
    a = 2 * xs.T @ xs / len(xs)  # Hessian of the mean squared support loss
    b = 2 * xs.T @ ys / len(xs)
    phi = np.linalg.solve(a + lam * np.eye(len(theta)), b + lam * np.asarray(theta))
    g = 2 * xq.T @ (xq @ phi - yq) / len(xq)
    return np.linalg.solve(np.eye(len(theta)) + a / lam, g), phi


def test_implicit_gradient_equals_the_closed_form_and_converged_unrolling():
    with jax.enable_x64(True):
        ep, lam, theta = linear_episode(2), 2.0, jnp.array([0.3, -0.2, 0.1, 0.5])
        exact, phi_star = exact_imaml_gradient(theta, ep, lam)
        settings = dict(steps=400, learning_rate=0.1, proximal=lam)

        def loss(meta_gradient):
            return lambda t: adapted_loss(
                square_loss,
                outer,
                t,
                ep,
                jax.random.key(0),
                meta_gradient=meta_gradient,
                **settings,
            )

        implicit, metrics = jax.grad(loss(Implicit(cg_steps=4)), has_aux=True)(theta)
        np.testing.assert_allclose(implicit, exact, rtol=1e-6, atol=1e-9)
        assert metrics["cg_residual"] < 1e-8 and metrics["cg_converged"] == 1
        unrolled, _ = jax.grad(loss(Unrolled()), has_aux=True)(theta)
        np.testing.assert_allclose(unrolled, exact, rtol=1e-6, atol=1e-9)
        # The inner loop really reached the proximal optimum.
        phi, _ = adapt(square_loss, theta, ep.support, jax.random.key(0), **settings)
        np.testing.assert_allclose(phi, phi_star, rtol=1e-8)


def test_imaml_learner_matches_closed_form_and_reports_nonconvergence():
    with jax.enable_x64(True):
        ep, theta = linear_episode(3), jnp.array([0.1, 0.2, -0.3, 0.0])
        learner = imaml(LINEAR, proximal=1.0, inner_lr=0.1, inner_steps=400, cg_steps=4)
        grad, metrics = jax.grad(learner.loss, has_aux=True)(theta, ep, jax.random.key(0))
        np.testing.assert_allclose(grad, exact_imaml_gradient(theta, ep, 1.0)[0], rtol=1e-6)
        rough = imaml(
            LINEAR, proximal=0.05, inner_lr=0.02, inner_steps=50, cg_steps=1, cg_tolerance=1e-6
        )
        _, metrics = rough.loss(theta, ep, jax.random.key(0))
        assert metrics["cg_converged"] == 0 and metrics["cg_residual"] > 1e-6


def test_imaml_adapts_at_test_with_its_own_proximal_strength():
    # The paper adapts a test task as in training (lambda 2: the proximal optimum); the
    # released evaluation uses lambda 0, plain gradient descent from theta, as MAML's.
    with jax.enable_x64(True):
        ep, theta, lam = linear_episode(4), jnp.array([0.2, -0.1, 0.4, 0.0]), 2.0
        key = jax.random.key(0)
        as_trained = imaml(LINEAR, proximal=lam, inner_lr=0.1, inner_steps=400)
        _, phi_star = exact_imaml_gradient(theta, ep, lam)
        np.testing.assert_allclose(
            as_trained.predict(theta, ep.support, ep.query.x, key), ep.query.x @ phi_star
        )
        released = imaml(LINEAR, proximal=lam, inner_lr=0.1, inner_steps=3, test_proximal=0.0)
        plain = maml(LINEAR, inner_lr=0.1, inner_steps=3, test_inner_steps=3)
        np.testing.assert_allclose(
            released.predict(theta, ep.support, ep.query.x, key),
            plain.predict(theta, ep.support, ep.query.x, key),
        )
        with pytest.raises(ValueError, match="test_proximal must be a number >= 0"):
            imaml(LINEAR, test_proximal=-1.0)


def test_damped_implicit_gradient_solves_the_damped_system():
    # The released iMAML code's system, (2 I + H / (lambda + 10)) v = g, exactly.
    with jax.enable_x64(True):
        ep, theta, lam = linear_episode(5), jnp.array([0.1, -0.4, 0.2, 0.3]), 2.0
        learner = imaml(
            LINEAR,
            proximal=lam,
            inner_lr=0.1,
            inner_steps=400,
            cg_steps=4,
            damping=1.0,
            lambda_damping=10.0,
        )
        grad, metrics = jax.grad(learner.loss, has_aux=True)(theta, ep, jax.random.key(0))
        _, phi = exact_imaml_gradient(theta, ep, lam)
        xs, xq, yq = (np.asarray(a) for a in (ep.support.x, ep.query.x, ep.query.y))
        hessian = 2 * xs.T @ xs / len(xs)
        g = 2 * xq.T @ (xq @ phi - yq) / len(xq)
        expected = np.linalg.solve(2 * np.eye(4) + hessian / (lam + 10.0), g)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-10)
        assert metrics["cg_converged"] == 1
        with pytest.raises(ValueError, match="lambda_damping must be >= 0"):
            imaml(LINEAR, lambda_damping=-1.0)


def test_first_order_gradient_is_the_query_gradient_at_the_adapted_parameters():
    with jax.enable_x64(True):
        ep, theta = linear_episode(4), jnp.array([0.2, 0.1, 0.0, -0.1])
        settings = dict(steps=3, learning_rate=0.05)
        grad, _ = jax.grad(
            lambda t: adapted_loss(
                square_loss, outer, t, ep, jax.random.key(0), meta_gradient=FirstOrder(), **settings
            ),
            has_aux=True,
        )(theta)
        phi, _ = adapt(square_loss, theta, ep.support, jax.random.key(0), **settings)
        np.testing.assert_allclose(
            grad, jax.grad(lambda p: outer(p, ep.query, None)[0])(phi), rtol=1e-12
        )


def test_bad_inner_settings_raise():
    ep = linear_episode()
    with pytest.raises(ValueError, match=r"inner steps must be an integer >= 1"):
        adapt(square_loss, jnp.zeros(4), ep.support, jax.random.key(0), steps=0)
    with pytest.raises(ValueError, match=r"inner learning rate must be > 0"):
        adapt(square_loss, jnp.zeros(4), ep.support, jax.random.key(0), steps=1, learning_rate=0.0)
    with pytest.raises(ValueError, match=r"need proximal \(lambda\) > 0"):
        adapted_loss(
            square_loss,
            outer,
            jnp.zeros(4),
            ep,
            jax.random.key(0),
            steps=1,
            meta_gradient=Implicit(),
        )
    with pytest.raises(ValueError, match=r"cg_steps must be an integer >= 1"):
        adapted_loss(
            square_loss,
            outer,
            jnp.zeros(4),
            ep,
            jax.random.key(0),
            steps=1,
            proximal=1.0,
            meta_gradient=Implicit(cg_steps=0),
        )
    with pytest.raises(ValueError, match=r"proximal \(lambda\) must be a number > 0"):
        imaml(LINEAR, proximal=-1.0)
    with pytest.raises(ValueError, match=r"cg_steps must be an integer >= 1"):
        imaml(LINEAR, cg_steps=0)


def test_conjugate_gradient_stops_at_negative_curvature():
    with jax.enable_x64(True):
        a = jnp.diag(jnp.array([2.0, -1.0, 3.0]))
        b = jnp.array([1.0, 1.0, 1.0])
        x, residual = conjugate_gradient(lambda v: a @ v, b, steps=5)
        assert np.isfinite(x).all() and np.isfinite(residual) and residual > 1e-3


@pytest.mark.parametrize(
    "rate",
    [np.float32(0.1), np.float64(0.1), np.array(0.1), jnp.float32(0.1), 0.1],
    ids=["np.float32", "np.float64", "np.array", "jnp.float32", "float"],
)
def test_adapt_takes_any_scalar_learning_rate_with_dict_parameters(rate):
    # A NumPy scalar is a scalar too, not a pytree of per-parameter rates.
    ep = linear_episode()
    params = {"w": jnp.zeros(4), "b": jnp.zeros(())}

    def loss(p, split, key):
        return jnp.mean(jnp.square(split.x @ p["w"] + p["b"] - split.y))

    phi, _ = adapt(loss, params, ep.support, jax.random.key(0), steps=2, learning_rate=rate)
    ref, _ = adapt(loss, params, ep.support, jax.random.key(0), steps=2, learning_rate=0.1)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), phi, ref)


class HalfFirstOrder(NamedTuple):
    """A meta-gradient of one's own: half the first-order one, by its own method."""

    def check(self, *, proximal):
        pass

    def loss(self, inner, outer_loss, theta, episode, key):
        value, metrics = FirstOrder().loss(inner, outer_loss, theta, episode, key)
        return 0.5 * value, metrics


def test_a_new_meta_gradient_is_one_class_that_adapted_loss_calls():
    with jax.enable_x64(True):
        ep, theta = linear_episode(6), jnp.array([0.2, -0.1, 0.0, 0.3])
        settings = dict(steps=3, learning_rate=0.05)

        def grad(meta_gradient):
            return jax.grad(
                lambda t: adapted_loss(
                    square_loss, outer, t, ep, KEY, meta_gradient=meta_gradient, **settings
                )[0]
            )(theta)

        np.testing.assert_allclose(grad(HalfFirstOrder()), 0.5 * grad(FirstOrder()), rtol=1e-12)
        with pytest.raises(ValueError, match=r"meta_gradient must be .*check\(proximal=\)"):
            adapted_loss(square_loss, outer, theta, ep, KEY, meta_gradient=object(), **settings)


def test_learners_check_once_at_their_entry_not_again_in_the_inner_loop(monkeypatch):
    # The learners' inputs are checked by checked() and their hyperparameters by the
    # factories; the inner loop's and the meta-gradient's own checks are for users
    # who call adapt/adapted_loss directly, so a learner never reaches them.
    module = importlib.import_module("metajax.learners.optimization.inner_loop")
    learners = [
        maml(LINEAR, inner_lr=0.1),
        fomaml(LINEAR, inner_lr=0.1),
        imaml(LINEAR, proximal=1.0, inner_lr=0.1, inner_steps=3),
        metasgd(LINEAR),
        reptile(LINEAR, inner_steps=2, test_inner_steps=2),
        finetune(LINEAR),
    ]
    column = jax.tree.map(lambda a: a if a.ndim == 2 else a[:, None], linear_episode(7))

    def checked_again(*args, **kwargs):
        raise AssertionError("an input was checked again inside the inner loop")

    for name in ("check_inner_config", "check_split", "check_episode", "check_key"):
        monkeypatch.setattr(module, name, checked_again)
    monkeypatch.setattr(Implicit, "check", checked_again)
    cases = [(learner, linear_episode(7)) for learner in learners]
    cases.append((anil(mlp(hidden=(3,)), outputs=1, inner_lr=0.1), column))
    for learner, ep in cases:
        params = learner.init(KEY, ep)
        value, _ = learner.loss(params, ep, KEY)
        assert np.isfinite(value)
        assert learner.predict(params, ep.support, ep.query.x, KEY).shape[0] == 8
