import jax
import jax.numpy as jnp
import numpy as np
import optax

from metajax.core.losses import classification_loss, cross_entropy


def test_cross_entropy_equals_optax_in_value_and_to_second_order():
    # The where form replaces optax's gather (whose derivative is a scatter loop on the
    # CPU); values, gradients and Hessian-vector products must be the same, vmapped too.
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(0), 3)
        logits = 3 * jax.random.normal(keys[0], (4, 6, 5), jnp.float64)
        labels = jax.random.randint(keys[1], (4, 6), 0, 5)
        direction = jax.random.normal(keys[2], logits.shape, jnp.float64)

        def derivatives(loss):
            def total(z):
                return jnp.sum(jnp.sin(jax.vmap(loss)(z, labels)))

            grad = jax.grad(total)
            return dict(
                value=jax.vmap(loss)(logits, labels),
                grad=grad(logits),
                hvp=jax.jvp(grad, (logits,), (direction,))[1],
                rev_rev=jax.grad(lambda z: jnp.sum(grad(z) ** 2))(logits),
            )

        derivatives = jax.jit(derivatives, static_argnums=0)
        ours = derivatives(cross_entropy)
        theirs = derivatives(optax.softmax_cross_entropy_with_integer_labels)
        for name in ours:
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, atol=1e-12)


def test_cross_entropy_takes_minus_infinity_for_masked_classes():
    logits = jnp.array([[0.0, -jnp.inf, 1.0], [2.0, 0.0, -jnp.inf]])
    labels = jnp.array([2, 0])
    loss, grad = jax.value_and_grad(lambda z: jnp.sum(cross_entropy(z, labels)))(logits)
    np.testing.assert_allclose(loss, np.log(1 + np.exp(-1.0)) + np.log(1 + np.exp(-2.0)), rtol=1e-6)
    assert np.isfinite(grad).all() and float(grad[0, 1]) == 0.0


def test_classification_loss_reports_mean_cross_entropy_and_accuracy():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    loss, metrics = classification_loss(logits, jnp.array([0, 1]))
    expected = np.mean([np.log(1 + 2 * np.exp(-2.0)), np.log(2 + np.e) - 0.0])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert float(metrics["accuracy"]) == 0.5 and metrics["loss"] == loss
