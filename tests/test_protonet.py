import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from metajax import Episode, Split, conv4, evaluate, meta_train, mlp, pool_sampler, protonet
from metajax.core.episodes import sample_episode


def numpy_protonet_loss(params, episode):
    """Snell et al. 2017, eqs. 1-2, written out in NumPy for a one-layer ReLU embedding."""
    w, b = np.asarray(params["Dense_0"]["kernel"]), np.asarray(params["Dense_0"]["bias"])

    def embed(x):
        return np.maximum(np.asarray(x).reshape(len(x), -1) @ w + b, 0.0)

    s, q = embed(episode.support.x), embed(episode.query.x)
    ys, yq = np.asarray(episode.support.y), np.asarray(episode.query.y)
    ways = ys.max() + 1
    protos = np.stack([s[ys == c].mean(0) for c in range(ways)])
    d = ((q[:, None, :] - protos[None, :, :]) ** 2).sum(-1)
    logits = -d
    log_p = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    loss = -log_p[np.arange(len(yq)), yq].mean()
    acc = (logits.argmax(1) == yq).mean()
    return loss, acc


def small_episode(key, ways=4, shots=3, queries=2, features=5):
    pool = jax.random.normal(key, (7, 10, features))
    return sample_episode(jax.random.fold_in(key, 1), pool, ways=ways, shots=shots, queries=queries)


def test_loss_equals_numpy_reference(f64):
    with jax.enable_x64(True):
        episode = small_episode(jax.random.key(0))
        learner = protonet(mlp(hidden=(6,)))
        params = f64(learner.init(jax.random.key(1), episode))
        loss, metrics = learner.loss(params, episode, jax.random.key(2))
        assert loss.dtype == jnp.float64
        ref_loss, ref_acc = numpy_protonet_loss(params, episode)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
        np.testing.assert_allclose(metrics["accuracy"], ref_acc)


def test_unequal_shots_use_each_class_mean(f64):
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (6, 5))
        support = Split(x=x, y=jnp.array([0, 0, 0, 1, 2, 2]))
        query = Split(x=jax.random.normal(jax.random.key(1), (4, 5)), y=jnp.array([0, 1, 2, 1]))
        episode = Episode(support, query)
        learner = protonet(mlp(hidden=(6,)))
        params = f64(learner.init(jax.random.key(2), episode))
        loss, _ = learner.loss(params, episode)
        np.testing.assert_allclose(loss, numpy_protonet_loss(params, episode)[0], rtol=1e-12)
        logits = learner.predict(params, support, query.x)
        assert logits.shape == (4, 6)
        assert np.isneginf(logits[:, 3:]).all() and np.isfinite(logits[:, :3]).all()


def test_gradients_match_finite_differences(f64):
    """Second order through a Dense+ReLU embedding; first order through every Conv-4 layer
    type (convolution, batch norm, ReLU, max pooling) at 4 filters and 2 blocks on 8x8."""
    with jax.enable_x64(True):
        episode = small_episode(jax.random.key(3), shots=2)  # absent labels are masked
        learner = protonet(mlp(hidden=(6,)))
        params = f64(learner.init(jax.random.key(4), episode))
        loss = jax.jit(lambda p: learner.loss(p, episode)[0])
        check_grads(loss, (params,), order=2, modes=["rev"])

        images = jax.random.normal(jax.random.key(5), (6, 6, 8, 8, 1))
        episode = sample_episode(jax.random.key(6), images, ways=3, shots=2, queries=2)
        learner = protonet(conv4(filters=4, blocks=2))
        params = f64(learner.init(jax.random.key(7), episode))
        check_grads(
            jax.jit(lambda p: learner.loss(p, episode)[0]),
            (params,),
            order=1,
            modes=["rev"],
            eps=1e-6,
            atol=1e-5,
            rtol=1e-5,
        )


def test_cosine_distance_and_bad_arguments():
    episode = small_episode(jax.random.key(8))
    learner = protonet(mlp(hidden=(6,)), distance="cosine")
    params = learner.init(jax.random.key(9), episode)
    loss, metrics = learner.loss(params, episode)
    assert np.isfinite(loss) and 0 <= metrics["accuracy"] <= 1
    with pytest.raises(ValueError, match=r"distance must be one of"):
        protonet(distance="manhattan")
    bad = episode._replace(support=Split(episode.support.x, episode.support.y.astype(float)))
    with pytest.raises(ValueError, match=r"support.y must be integer labels"):
        learner.loss(params, bad)
    with pytest.raises(ValueError, match=r"query_x features"):
        learner.predict(params, episode.support, jnp.ones((3, 4)))


def test_each_split_is_checked_once(monkeypatch):
    """loss calls predict, but the support set is checked once, where loss is entered."""
    import metajax.core.learner as core_learner

    checked_splits = []
    check_split = core_learner.check_split

    def counting(name, split, **kwargs):
        checked_splits.append(name)
        return check_split(name, split, **kwargs)

    monkeypatch.setattr(core_learner, "check_split", counting)
    learner = protonet(mlp(hidden=(6,)))
    episode = small_episode(jax.random.key(13))
    params = learner.init(jax.random.key(14), episode)
    checked_splits.clear()
    learner.loss(params, episode, jax.random.key(0))
    assert checked_splits == ["support", "query"]
    checked_splits.clear()
    learner.predict(params, episode.support, episode.query.x)
    assert checked_splits == ["support"]


def test_learns_omniglot_one_shot(omniglot_vinyals_14):
    """300 steps of 20-way training reach >= 80% on 5-way 1-shot 14x14 unseen characters.

    Chance is 20%, and an untrained Conv-4 embedding already scores about 60% (a random
    embedding keeps much of the pixels' similarity), so 80% shows learning. The paper's
    model (squared Euclidean, Conv-4) narrowed to fit a CPU test: 32 filters, 3 blocks
    for 14x14 images, Adam at 3e-3. It measured 88.9%, 88.8% and 87.4% (± 2%, 100
    episodes) at training seeds 0, 1 and 2 when written.
    """
    learner = protonet(conv4(filters=32, blocks=3))
    train = pool_sampler(omniglot_vinyals_14.pool("train"), ways=20, shots=1, queries=5)
    state, history = meta_train(
        learner,
        train,
        optax.adam(3e-3),
        steps=300,
        key=jax.random.key(0),
        log_every=10,
        progress=False,
    )
    assert history[-1]["loss"] < 0.5 * history[0]["loss"], history
    test = pool_sampler(omniglot_vinyals_14.pool("test"), ways=5, shots=1, queries=5)
    result = evaluate(learner, state.params, test, key=jax.random.key(1), episodes=100)
    assert result.mean["accuracy"] >= 0.80, result
