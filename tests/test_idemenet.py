import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from metajax import Split, conv4, evaluate, meta_train, mlp, pool_sampler, protonet
from metajax.core.episodes import sample_episode
from metajax.learners.metric.idemenet import DeformationNet, deform, idemenet, patch_index


def image_pool(key, classes=8, examples=6, side=8):
    return jax.random.normal(key, (classes, examples, side, side, 1))


def image_episode(key, ways=3, shots=1, queries=2, side=8):
    pool = image_pool(key, side=side)
    return sample_episode(jax.random.fold_in(key, 1), pool, ways=ways, shots=shots, queries=queries)


def gallery_of(key, n=6, side=8):
    return np.asarray(jax.random.normal(jax.random.fold_in(key, 7), (n, side, side, 1)))


def tiny_learner(gallery, **kwargs):
    options = dict(
        model=conv4(filters=3, blocks=2),
        generated=2,
        neighbours=3,
        candidates=5,
        deformation_filters=3,
        deformation_blocks=1,
    )
    options.update(kwargs)
    return idemenet(gallery=gallery, **options)


def numpy_deform(probe, gallery, weights, grid):
    """The paper's patch fusion written with explicit patch slices (boundaries k * side//grid)."""
    probe, gallery, weights = map(np.asarray, (probe, gallery, weights))
    out = np.empty_like(probe)
    _, height, width, _ = probe.shape
    rows = [i * (height // grid) for i in range(grid)] + [height]
    cols = [j * (width // grid) for j in range(grid)] + [width]
    for n in range(len(probe)):
        for i in range(grid):
            for j in range(grid):
                w = weights[n, i * grid + j]
                r, c = slice(rows[i], rows[i + 1]), slice(cols[j], cols[j + 1])
                out[n, r, c] = w * probe[n, r, c] + (1 - w) * gallery[n, r, c]
    return out


@pytest.mark.parametrize("side, grid", [(28, 3), (10, 3), (7, 2), (5, 1)])
def test_patch_fusion_equals_numpy_reference(side, grid):
    with jax.enable_x64(True):
        key = jax.random.key(side)
        probe = jax.random.normal(key, (4, side, side, 2), jnp.float64)
        gallery = jax.random.normal(jax.random.fold_in(key, 1), probe.shape, jnp.float64)
        weights = jax.random.uniform(jax.random.fold_in(key, 2), (4, grid * grid), jnp.float64)
        out = jax.jit(lambda p, g, w: deform(p, g, w, grid=grid))(probe, gallery, weights)
        assert out.shape == probe.shape and out.dtype == jnp.float64
        np.testing.assert_allclose(
            out, numpy_deform(probe, gallery, weights, grid), rtol=1e-14, atol=1e-15
        )
        # w = 1 is the probe and w = 0 the gallery, exactly.
        ones, zeros = jnp.ones_like(weights), jnp.zeros_like(weights)
        np.testing.assert_array_equal(deform(probe, gallery, ones, grid=grid), probe)
        np.testing.assert_array_equal(deform(probe, gallery, zeros, grid=grid), gallery)
        # One patch at a time: weight 1 on patch k alone copies exactly that patch of the probe.
        index = patch_index(side, side, grid)
        for k in range(grid * grid):
            mixed = deform(probe, gallery, zeros.at[:, k].set(1.0), grid=grid)
            inside = (index == k)[None, :, :, None]
            np.testing.assert_array_equal(mixed, jnp.where(inside, probe, gallery))
    assert sorted(np.bincount(patch_index(28, 28, 3).ravel())) == [81] * 4 + [90] * 4 + [100]


def test_deformation_network_output_has_the_image_shape():
    key = jax.random.key(0)
    probe = jax.random.uniform(key, (5, 28, 28, 1))
    gallery = jax.random.uniform(jax.random.fold_in(key, 1), (5, 28, 28, 1))
    net = DeformationNet()  # the default encoder on Omniglot-sized images
    variables = jax.jit(net.init)(jax.random.key(1), probe, gallery)
    deformed, weights = jax.jit(net.apply)(variables, probe, gallery)
    assert deformed.shape == probe.shape and weights.shape == (5, 9)
    assert bool(jnp.all((weights > 0) & (weights < 1)))
    np.testing.assert_allclose(deformed, deform(probe, gallery, weights), rtol=1e-6)
    # Each pixel is a convex blend, so it lies between the probe's and the gallery's.
    low, high = jnp.minimum(probe, gallery), jnp.maximum(probe, gallery)
    assert bool(jnp.all((deformed >= low - 1e-6) & (deformed <= high + 1e-6)))


def saturate_deformation(params, logit):
    """Deformation weights of exactly sigmoid(logit): a zero kernel and a constant bias."""
    dense = params["deformation"]["Dense_0"]
    return {
        **params,
        "deformation": {
            **params["deformation"],
            "Dense_0": {
                "kernel": jnp.zeros_like(dense["kernel"]),
                "bias": dense["bias"] * 0 + logit,
            },
        },
    }


@pytest.mark.parametrize("selection", ["nearest", "random"])
def test_weights_of_one_reduce_to_prototypical_networks(f64, selection):
    """With w = 1 each deformed image copies its probe, labelled like it: ProtoNet's logits."""
    with jax.enable_x64(True):
        key = jax.random.key(3)
        episode = image_episode(key, ways=3, shots=2)
        embedding = mlp(hidden=(7,))  # no batch norm: duplicates leave the embedding unchanged
        learner = tiny_learner(gallery_of(key), model=embedding, selection=selection)
        params = f64(jax.jit(learner.init)(jax.random.key(4), episode))
        params = saturate_deformation(params, 50.0)  # sigmoid(50) == 1.0 in float64
        logits = jax.jit(learner.predict)(params, episode.support, episode.query.x, key)
        reference = protonet(embedding).predict(
            params["embedding"], episode.support, episode.query.x
        )
        assert logits.shape == (6, 6) and np.isneginf(logits[:, 3:]).all()
        np.testing.assert_allclose(logits[:, :3], reference[:, :3], rtol=1e-12)
        # w = 0 instead: the prototypes now mix in gallery images and change.
        mixed = jax.jit(learner.predict)(
            saturate_deformation(params, -50.0), episode.support, episode.query.x, key
        )
        assert not np.allclose(mixed[:, :3], reference[:, :3])


def test_query_loss_reaches_both_sub_networks():
    key = jax.random.key(5)
    episode = image_episode(key)
    learner = tiny_learner(gallery_of(key))
    params = jax.jit(learner.init)(jax.random.key(6), episode)
    assert set(params) == {"embedding", "deformation"}
    grads = jax.jit(jax.grad(lambda p: learner.loss(p, episode, key)[0]))(params)
    for name in ("embedding", "deformation"):
        leaves = jax.tree.leaves(grads[name])
        assert all(np.isfinite(g).all() for g in leaves), name
        assert all(np.abs(g).max() > 0 for g in leaves), name
    # The deformation weights are what the loss reaches through the deformed images.
    assert np.abs(grads["deformation"]["Dense_0"]["kernel"]).max() > 0


@pytest.mark.parametrize("selection", ["nearest", "random"])
def test_gradients_match_finite_differences(f64, selection):
    with jax.enable_x64(True):
        key = jax.random.key(8)
        episode = image_episode(key)
        learner = tiny_learner(gallery_of(key), selection=selection)
        params = f64(jax.jit(learner.init)(jax.random.key(9), episode))
        check_grads(
            jax.jit(lambda p: learner.loss(p, episode, key)[0]), (params,), order=1, modes=["rev"]
        )


def test_different_keys_draw_different_deformations():
    key = jax.random.key(13)
    episode = image_episode(key)
    learner = tiny_learner(gallery_of(key), selection="random")
    params = learner.init(jax.random.key(14), episode)
    predict = jax.jit(learner.predict)
    a = predict(params, episode.support, episode.query.x, jax.random.key(0))
    b = predict(params, episode.support, episode.query.x, jax.random.key(0))
    c = predict(params, episode.support, episode.query.x, jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:, :3], c[:, :3])


def test_bad_arguments_raise_clear_errors():
    key = jax.random.key(15)
    gallery = gallery_of(key)
    episode = image_episode(key)
    with pytest.raises(ValueError, match=r"gallery must be images \[n, height, width, channels\]"):
        idemenet(gallery=gallery[..., 0])
    with pytest.raises(ValueError, match=r"gallery must be images"):
        idemenet(gallery=[1, 2, 3])
    with pytest.raises(ValueError, match=r"gallery must hold at least one image"):
        idemenet(gallery=np.zeros((0, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"generated must be an integer >= 1"):
        tiny_learner(gallery, generated=0)
    with pytest.raises(ValueError, match=r"grid must be an integer in 1..8"):
        tiny_learner(gallery, grid=9)
    with pytest.raises(ValueError, match=r"grid must be an integer"):
        tiny_learner(gallery, grid=0)
    with pytest.raises(ValueError, match=r"selection must be one of"):
        tiny_learner(gallery, selection="farthest")
    with pytest.raises(ValueError, match=r"candidates must be None or an integer in 3..6"):
        tiny_learner(gallery, candidates=7)
    with pytest.raises(ValueError, match=r"candidates must be None or an integer in 3..6"):
        tiny_learner(gallery, candidates=2)
    with pytest.raises(ValueError, match=r"neighbours must be <= the 6 ranked gallery images"):
        tiny_learner(gallery, neighbours=7, candidates=None)
    with pytest.raises(ValueError, match=r"deformation_blocks=4 pools 8x8 images below 1x1"):
        tiny_learner(gallery, deformation_blocks=4)
    with pytest.raises(ValueError, match=r"deformation_filters must be an integer >= 1"):
        tiny_learner(gallery, deformation_filters=0)
    learner = tiny_learner(gallery)
    params = learner.init(jax.random.key(16), episode)
    loss, metrics = learner.loss(params, episode, key)
    assert np.isfinite(loss) and 0 <= metrics["accuracy"] <= 1
    # Episodes of 10x10 images do not fit a gallery of 8x8 images.
    other = image_episode(key, side=10)
    with pytest.raises(ValueError, match=r"gallery images \(8, 8, 1\) and the episode's images"):
        learner.init(jax.random.key(16), other)
    with pytest.raises(ValueError, match=r"gallery images \(8, 8, 1\) and the episode's images"):
        learner.predict(params, other.support, other.query.x, key)
    with pytest.raises(ValueError, match=r"query_x features"):
        learner.predict(params, episode.support, jnp.ones((3, 8, 8, 2)), key)
    with pytest.raises(ValueError, match=r"key must be a PRNG key"):
        learner.predict(params, episode.support, episode.query.x, None)
    bad = episode._replace(support=Split(episode.support.x, episode.support.y.astype(float)))
    with pytest.raises(ValueError, match=r"support.y must be integer labels"):
        learner.loss(params, bad, key)
    with pytest.raises(ValueError, match=r"weights must be \[n, grid \* grid\]"):
        deform(episode.support.x, episode.support.x, jnp.ones((3, 4)), grid=3)
    with pytest.raises(ValueError, match=r"probe and gallery must be images"):
        deform(episode.support.x, episode.query.x, jnp.ones((3, 9)))


def test_learns_omniglot_one_shot(omniglot_vinyals):
    """About a minute of 10-way 1-shot training is far above chance (20%) on unseen characters.

    A reduced model to fit a CPU test: Conv-4 with 32 filters, 2 deformed images per
    probe, a gallery of one image from each of 300 training characters (nearest 8 of
    32 candidates per episode). The test classes are the Vinyals test characters.
    """
    train_pool = omniglot_vinyals.pool("train")
    rng = np.random.default_rng(0)
    gallery = train_pool[rng.choice(len(train_pool), 300, replace=False), 0]
    learner = idemenet(
        gallery=gallery,
        model=conv4(filters=32),
        generated=2,
        neighbours=8,
        candidates=32,
        deformation_filters=16,
    )
    train = pool_sampler(train_pool, ways=10, shots=1, queries=5)
    state, history = meta_train(
        learner, train, optax.adam(1e-3), steps=150, key=jax.random.key(0), progress=False
    )
    assert history[-1]["loss"] < history[0]["loss"]
    test = pool_sampler(omniglot_vinyals.pool("test"), ways=5, shots=1, queries=5)
    result = evaluate(learner, state.params, test, key=jax.random.key(1), episodes=200)
    assert result.mean["accuracy"] >= 0.75, result
