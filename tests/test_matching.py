import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from metajax import Episode, Split, conv4, evaluate, meta_train, mlp, pool_sampler
from metajax.core.episodes import sample_episode
from metajax.learners.metric.matching import FullContextEmbedding, attention, matching_networks


def numpy_matching(params, episode):
    """Vinyals et al. 2016, eqs. 1-2, in NumPy for a one-hidden-layer MLP embedding.

    Returns the attention ``[n_query, n_support]``, the label distribution
    ``[n_query, n_support]`` (columns of absent labels are zero), the loss and accuracy.
    """
    p = params["embedding"]

    def embed(x):
        x = np.asarray(x).reshape(len(x), -1)
        h = np.maximum(x @ np.asarray(p["Dense_0"]["kernel"]) + np.asarray(p["Dense_0"]["bias"]), 0)
        return h @ np.asarray(p["Dense_1"]["kernel"]) + np.asarray(p["Dense_1"]["bias"])

    s, q = embed(episode.support.x), embed(episode.query.x)
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    cosine = q @ s.T
    a = np.exp(cosine) / np.exp(cosine).sum(1, keepdims=True)
    ys, yq = np.asarray(episode.support.y), np.asarray(episode.query.y)
    onehot = np.eye(len(ys))[ys]  # one column per possible label 0..n_support-1
    probs = a @ onehot
    loss = -np.log(probs[np.arange(len(yq)), yq]).mean()
    return a, probs, loss, (probs.argmax(1) == yq).mean()


def small_episode(key, ways=4, shots=3, queries=2, features=5):
    pool = jax.random.normal(key, (7, 10, features))
    return sample_episode(jax.random.fold_in(key, 1), pool, ways=ways, shots=shots, queries=queries)


def small_learner(**kwargs):
    return matching_networks(mlp(hidden=(8,), outputs=6), **kwargs)


def test_attention_and_loss_equal_numpy_reference(f64):
    with jax.enable_x64(True):
        episode = small_episode(jax.random.key(0))
        learner = small_learner()
        params = f64(jax.jit(learner.init)(jax.random.key(1), episode))
        ref_a, ref_probs, ref_loss, ref_acc = numpy_matching(params, episode)
        apply = mlp(hidden=(8,), outputs=6).apply
        a = jax.jit(attention)(
            apply(params["embedding"], episode.query.x),
            apply(params["embedding"], episode.support.x),
        )
        np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(a, ref_a, rtol=1e-10)
        log_probs = jax.jit(learner.predict)(params, episode.support, episode.query.x)
        assert log_probs.dtype == jnp.float64 and log_probs.shape == (8, 12)
        np.testing.assert_allclose(jnp.exp(log_probs), ref_probs, rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(jnp.exp(log_probs).sum(-1), 1.0, rtol=1e-12)
        assert np.isneginf(log_probs[:, 4:]).all()  # absent labels
        loss, metrics = jax.jit(learner.loss)(params, episode)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-10)
        np.testing.assert_allclose(metrics["accuracy"], ref_acc)


def test_log_probs_stay_finite_when_attention_underflows(f64):
    """A class far from the query keeps a finite log-probability (no log 0 -> inf loss)."""
    with jax.enable_x64(True):
        x = jnp.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
        support = Split(x=x, y=jnp.array([0, 1, 2]))
        episode = Episode(support, Split(x=jnp.array([[0.0, 1.0]]), y=jnp.array([1])))
        identity = mlp(hidden=(), outputs=2)
        params = {"embedding": {"Dense_0": {"kernel": jnp.eye(2), "bias": jnp.zeros(2)}}}
        learner = matching_networks(identity, distance="squared_euclidean")
        loss, _ = jax.jit(learner.loss)(params, episode)
        # -log p(1) = d(1) - d(0) + log(1 + e^{d(0)-d(2)} + ...) = 100^2 + 1 - 1 exactly enough.
        np.testing.assert_allclose(loss, 100.0**2, rtol=1e-9)
        grads = jax.jit(jax.grad(lambda p: learner.loss(p, episode)[0]))(params)
        assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(p, x, carry):
    """One step of the LSTM of Hochreiter & Schmidhuber as Vinyals et al. use it (no peepholes)."""
    c, h = carry

    def gate(name):
        return x @ p["i" + name]["kernel"] + h @ p["h" + name]["kernel"] + p["h" + name]["bias"]

    c = sigmoid(gate("f")) * c + sigmoid(gate("i")) * np.tanh(gate("g"))
    return c, sigmoid(gate("o")) * np.tanh(c)


def numpy_full_context(params, s, q, read_steps):
    """Appendix A of Vinyals et al. 2016 written out step by step in NumPy."""
    params = jax.tree.map(np.asarray, params)
    s, q = np.asarray(s), np.asarray(q)
    zeros = np.zeros(s.shape[1])
    fwd, bwd = [], []
    carry = (zeros, zeros)
    for i in range(len(s)):  # A.2: forward LSTM over g'(x_1..n)
        carry = numpy_lstm(params["support"]["forward"], s[i], carry)
        fwd.append(carry[1])
    carry = (zeros, zeros)
    for i in reversed(range(len(s))):  # and a backward one
        carry = numpy_lstm(params["support"]["backward"], s[i], carry)
        bwd.insert(0, carry[1])
    g = s + np.stack(fwd) + np.stack(bwd)
    f = []
    for f_prime in q:  # A.1: K reads of g(S) by content-based attention
        c, h = np.zeros_like(f_prime), np.zeros_like(f_prime)
        for _ in range(read_steps):
            a = np.exp(g @ h) / np.exp(g @ h).sum()
            r = a @ g
            c, h_hat = numpy_lstm(
                params["query"]["read"]["lstm"], np.concatenate([f_prime, r]), (c, h)
            )
            h = h_hat + f_prime
        f.append(h)
    return g, np.stack(f)


def test_full_context_embeddings_equal_numpy_reference(f64):
    with jax.enable_x64(True):
        key = jax.random.key(13)
        s = jax.random.normal(key, (5, 3), jnp.float64)
        q = jax.random.normal(jax.random.fold_in(key, 1), (4, 3), jnp.float64)
        fce = FullContextEmbedding(read_steps=3)
        params = f64(jax.jit(fce.init)(jax.random.key(14), s, q)["params"])
        g, f = jax.jit(fce.apply)({"params": params}, s, q)
        ref_g, ref_f = numpy_full_context(params, s, q, read_steps=3)
        np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(f, ref_f, rtol=1e-12, atol=1e-12)


def test_full_context_embeddings_change_embeddings_with_finite_gradients():
    key = jax.random.key(2)
    s, q = jax.random.normal(key, (6, 4)), jax.random.normal(jax.random.fold_in(key, 1), (5, 4))
    fce = FullContextEmbedding(read_steps=3)
    variables = jax.jit(fce.init)(jax.random.key(3), s, q)
    assert set(variables["params"]) == {"support", "query"}
    # One compiled call for both inputs: the module is a pure function of (s, q).
    (g, f), (g2, f2) = jax.jit(lambda v: (fce.apply(v, s, q), fce.apply(v, s.at[-1].add(1.0), q)))(
        variables
    )
    assert g.shape == s.shape and f.shape == q.shape
    assert not np.allclose(g, s) and not np.allclose(f, q)
    # g(x_0) depends on the last support example (the backward LSTM reads it), and so does f.
    assert not np.allclose(g2[0], g[0]) and not np.allclose(f2, f)

    episode = small_episode(jax.random.key(4))
    learner = small_learner(fce=True, read_steps=3)
    plain_learner = small_learner()
    params = jax.jit(learner.init)(jax.random.key(5), episode)
    assert set(params) == {"embedding", "fce"}

    @jax.jit
    def outputs(params):
        plain = plain_learner.predict(
            {"embedding": params["embedding"]}, episode.support, episode.query.x
        )
        full = learner.predict(params, episode.support, episode.query.x)
        return plain, full, jax.grad(lambda p: learner.loss(p, episode)[0])(params)

    plain, full, grads = outputs(params)
    assert not np.allclose(plain[:, :4], full[:, :4])
    leaves = jax.tree.leaves(grads["fce"])
    assert all(np.isfinite(g).all() for g in leaves) and any(np.abs(g).max() > 0 for g in leaves)


@pytest.mark.parametrize("fce", [False, True])
def test_gradients_match_finite_differences(f64, fce):
    with jax.enable_x64(True):
        episode = small_episode(jax.random.key(6), shots=2)  # absent labels are masked
        learner = small_learner(fce=fce, read_steps=2)
        params = f64(jax.jit(learner.init)(jax.random.key(7), episode))
        check_grads(
            jax.jit(lambda p: learner.loss(p, episode)[0]), (params,), order=1, modes=["rev"]
        )


def test_second_call_does_not_recompile():
    learner = small_learner(fce=True, read_steps=2)
    episode = small_episode(jax.random.key(10))
    params = learner.init(jax.random.key(11), episode)
    # chex counts traces by source and call stack, which every learner's
    # checked() loss shares: start from zero.
    chex.clear_trace_counter()
    loss = jax.jit(chex.assert_max_traces(learner.loss, n=1))
    loss(params, episode, jax.random.key(0))
    loss(params, small_episode(jax.random.key(12)), jax.random.key(1))


def test_bad_arguments_raise_clear_errors():
    episode = small_episode(jax.random.key(8))
    learner = small_learner()
    params = learner.init(jax.random.key(9), episode)
    with pytest.raises(ValueError, match=r"distance must be one of"):
        matching_networks(distance="manhattan")
    with pytest.raises(ValueError, match=r"read_steps must be an integer >= 1"):
        matching_networks(fce=True, read_steps=0)
    bad = episode._replace(support=Split(episode.support.x, episode.support.y.astype(float)))
    with pytest.raises(ValueError, match=r"support.y must be integer labels"):
        learner.loss(params, bad)
    with pytest.raises(ValueError, match=r"support.x and support.y disagree"):
        learner.predict(params, Split(episode.support.x, episode.support.y[:-1]), episode.query.x)
    with pytest.raises(ValueError, match=r"query_x features"):
        learner.predict(params, episode.support, jnp.ones((3, 4)))
    with pytest.raises(ValueError, match=r"support must hold at least one example"):
        learner.predict(params, Split(jnp.ones((0, 5)), jnp.zeros(0, int)), episode.query.x)
    # A support set smaller than the ways: query classes 2 and 3 have no support example.
    short = episode._replace(support=Split(episode.support.x[:6], episode.support.y[:6]))
    with pytest.raises(ValueError, match=r"query.y has labels \[2, 3\] with no example"):
        learner.loss(params, short)
    wrong = episode._replace(support=Split(episode.support.x, episode.support.y + 20))
    with pytest.raises(ValueError, match=r"support.y labels must lie in 0..11"):
        learner.loss(params, wrong)


def test_learns_omniglot_one_shot(omniglot_vinyals_14):
    """300 steps of 20-way 1-shot training reach >= 75% on 5-way 1-shot 14x14 unseen characters.

    Chance is 20%, and an untrained Conv-4 embedding scores about 60% (the pixels'
    similarity survives a random embedding), so 75% shows learning. The paper's
    Omniglot model (cosine attention, no FCE) narrowed to fit a CPU test: 32 filters,
    3 blocks for 14x14 images, and the cosines scaled by 10 inside the softmax, which
    learns much faster in a short run (see benchmarks/matching_omniglot/configs/default.py).
    It measured 84.4% and 83.3% (± 2%, 100 episodes) at training seeds 0 and 1 when
    written; 150 steps gave 81.2% and 78.9%.
    """
    learner = matching_networks(conv4(filters=32, blocks=3), scale=10.0)
    train = pool_sampler(omniglot_vinyals_14.pool("train"), ways=20, shots=1, queries=5)
    state, history = meta_train(
        learner,
        train,
        optax.adam(1e-3),
        steps=300,
        key=jax.random.key(0),
        log_every=10,
        progress=False,
    )
    assert history[-1]["loss"] < 0.6 * history[0]["loss"], history
    test = pool_sampler(omniglot_vinyals_14.pool("test"), ways=5, shots=1, queries=5)
    result = evaluate(learner, state.params, test, key=jax.random.key(1), episodes=100)
    assert result.mean["accuracy"] >= 0.75, result
