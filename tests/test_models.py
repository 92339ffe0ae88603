import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metajax import compiler_options, init_state, make_train_step, maml, pool_sampler
from metajax.core.tracing import adapts_per_task, traces_per_task_weights
from metajax.nets.backbones import (
    BatchStatNorm,
    conv4,
    im2col_conv,
    max_pool_2x2,
    mlp,
)


def test_conv4_shapes():
    model = conv4()
    x = jnp.ones((3, 28, 28, 1))
    params = model.init(jax.random.key(0), x)
    assert model.apply(params, x).shape == (3, 64)
    assert model.apply(params, jnp.ones((2, 84, 84, 1))).shape == (2, 5 * 5 * 64)


def test_batch_norm_uses_the_batch_statistics():
    model = conv4(filters=8, blocks=1)
    x = jax.random.normal(jax.random.key(1), (6, 16, 16, 2))
    params = model.init(jax.random.key(0), x)
    # With batch statistics (and no conv bias), rescaling the whole batch changes nothing.
    np.testing.assert_allclose(
        model.apply(params, 3.0 * x), model.apply(params, x), rtol=1e-3, atol=1e-3
    )


def test_max_pool_floors_odd_sizes():
    x = jnp.arange(2 * 7 * 7 * 1, dtype=jnp.float32).reshape(2, 7, 7, 1)
    out = max_pool_2x2(x)
    assert out.shape == (2, 3, 3, 1)
    assert out[0, 0, 0, 0] == x[0, 1, 1, 0]


def test_conv4_rejects_bad_images():
    model = conv4()
    params = model.init(jax.random.key(0), jnp.ones((1, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"rank 4"):
        model.apply(params, jnp.ones((28, 28, 1)))
    with pytest.raises(ValueError, match=r"at least 16x16"):
        model.apply(params, jnp.ones((2, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"1 channels"):
        model.apply(params, jnp.ones((2, 28, 28, 3)))


def test_mlp_shapes_and_errors():
    model = mlp(hidden=(40, 40), outputs=1)
    params = model.init(jax.random.key(0), jnp.ones((4, 1)))
    assert model.apply(params, jnp.ones((4, 1))).shape == (4, 1)
    with pytest.raises(ValueError, match=r"1 features"):
        model.apply(params, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match=r"at least one layer"):
        mlp(hidden=())


def test_im2col_convolution_matches_xla_with_the_same_parameters():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(2), (3, 28, 28, 2), jnp.float64)
        ref, fast = conv4(outputs=4, convolution="xla"), conv4(outputs=4, convolution="im2col")
        params = jax.tree.map(lambda a: a.astype(jnp.float64), ref.init(jax.random.key(0), x))
        np.testing.assert_allclose(
            fast.apply(params, x), ref.apply(params, x), rtol=1e-10, atol=1e-10
        )
    with pytest.raises(ValueError, match=r"convolution must be one of"):
        conv4(convolution="fft")


@pytest.mark.parametrize("cin,cout", [(1, 12), (2, 4)])
def test_im2col_derivatives_match_xla_to_second_order(cin, cout):
    # (1, 12): fewer patch columns than outputs, so the kernel's gradient goes through
    # the pixel-minor patches of a custom JVP; (2, 4): ordinary autodiff of im2col.
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(3), 3)
        x = jax.random.normal(keys[0], (2, 5, 6, cin), jnp.float64)
        kernel = jax.random.normal(keys[1], (3, 3, cin, cout), jnp.float64)
        weights = jax.random.normal(keys[2], (2, 5, 6, cout), jnp.float64)

        def loss(conv):
            dims = ("NHWC", "HWIO", "NHWC")
            return lambda k, x: jnp.sum(
                jnp.sin(conv(x, k, (1, 1), "SAME", dimension_numbers=dims)) * weights
            )

        def derivatives(f):
            both = jax.grad(f, (0, 1))
            squared = lambda k, x: sum(jnp.sum(g**2) for g in both(k, x))  # noqa: E731
            return (
                f(kernel, x),
                both(kernel, x),
                jax.grad(squared, (0, 1))(kernel, x),  # reverse over reverse (MAML)
                jax.jacfwd(jax.grad(f), 1)(kernel, x),  # forward over reverse
            )

        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10),
            derivatives(loss(im2col_conv)),
            derivatives(loss(jax.lax.conv_general_dilated)),
        )


def test_auto_convolution_is_im2col_only_for_per_task_weights_on_the_cpu():
    model = conv4(filters=4, blocks=1)
    x = jnp.ones((2, 6, 6, 1))
    params = model.init(jax.random.key(0), x)

    def primitives(fn):
        return {eqn.primitive.name for eqn in jax.make_jaxpr(fn)(params, x).eqns}

    assert "conv_general_dilated" in primitives(model.apply)
    adapted = adapts_per_task(model.apply)
    on_cpu = jax.default_backend() == "cpu"
    assert ("conv_general_dilated" in primitives(adapted)) != on_cpu
    assert traces_per_task_weights(adapted, params, x)
    assert not traces_per_task_weights(model.apply, params, x)


@pytest.mark.parametrize("convolution", ["xla", "im2col"])
def test_per_example_gradients_are_right_inside_per_task_weights(convolution):
    # jit(vmap(grad)) with shared weights, against one task at a time: at these small
    # shapes XLA:CPU (jax 0.10.2) gets it wrong with the reshape-and-max pool, by as
    # much as the gradients' size; per_task_weights switches to a formulation it gets right.
    model = conv4(filters=4, blocks=2, outputs=3, convolution=convolution)
    x = jax.random.normal(jax.random.key(0), (3, 3, 8, 8, 1))
    params = model.init(jax.random.key(1), x[0])
    grad = adapts_per_task(jax.grad(lambda p, x: jnp.sum(jnp.sin(model.apply(p, x)))))
    batched = jax.jit(jax.vmap(grad, in_axes=(None, 0)))(params, x)
    for i in range(3):
        one = jax.jit(grad)(params, x[i])
        jax.tree.map(
            lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5),
            batched,
            one,
        )


def test_maml_meta_gradient_is_the_same_with_either_convolution():
    # The CPU's default for per-task weights (im2col, one task at a time) against XLA's
    # convolution vmapped over the tasks: same loss, same second-order meta-gradient.
    with jax.enable_x64(True):
        pool = jax.random.normal(jax.random.key(0), (6, 4, 8, 8, 1), jnp.float64)
        sampler = pool_sampler(np.asarray(pool), ways=3, shots=1, queries=2)
        results = []
        for convolution, chunk in (("xla", None), ("auto", "auto"), ("im2col", None)):
            # 10 filters: the first layer (9 inputs per pixel) takes im2col's kernel
            # gradient through the pixel-minor patches, the second the ordinary one.
            learner = maml(conv4(filters=10, blocks=2, outputs=3, convolution=convolution))
            state = init_state(learner, optax.sgd(1.0), sampler, jax.random.key(1))
            params = jax.tree.map(lambda a: a.astype(jnp.float64), state.params)
            step = make_train_step(learner, optax.sgd(1.0), sampler, tasks=3, task_chunk=chunk)
            new, metrics = step(state._replace(params=jax.tree.map(jnp.copy, params)), sampler.data)
            # With SGD at rate 1, the change of the parameters is the meta-gradient.
            results.append((jax.tree.map(jnp.subtract, params, new.params), metrics["loss"]))
    for other in results[1:]:
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), results[0], other
        )


def test_gradients_through_batch_norm_and_an_odd_sized_pool_are_finite():
    """XLA:CPU at -O0 (jax_disable_most_optimizations) computes NaN here (jax 0.10.2).

    A reason the test run keeps XLA's default optimisation (conftest.py): this test fails
    if the suite's settings are lowered to -O0 to save compile time.
    """
    x = jax.random.normal(jax.random.key(1), (15, 7, 7, 32))
    norm = BatchStatNorm()
    params = norm.init(jax.random.key(0), x)
    grads = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(max_pool_2x2(norm.apply(params, x))))))(x)
    assert np.isfinite(grads).all()


def test_compiler_options_give_the_same_convolution_gradients():
    # On the CPU they choose libraries and emitters, for speed and memory only.
    assert compiler_options("gpu") == {} and compiler_options("tpu") == {}
    options = compiler_options()
    if jax.default_backend() == "cpu":
        assert set(options) <= {
            "xla_cpu_experimental_ynn_fusion_type",
            "xla_cpu_use_fusion_emitters",
        }
    with jax.enable_x64(True):
        model = conv4(filters=6, blocks=2, convolution="xla")
        x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1), jnp.float64)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), model.init(jax.random.key(1), x))
        grad = jax.grad(lambda p: jnp.sum(jnp.sin(model.apply(p, x))))
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
            jax.jit(grad, compiler_options=options)(params),
            jax.jit(grad)(params),
        )
