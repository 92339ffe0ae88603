import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metajax.core.episodes import pool_sampler, sample_batch, sample_episode


def coded_pool(classes=12, examples=9, extra=(2,)):
    """pool[c, e] holds 1000 * c + e everywhere, so an example names its class and index."""
    codes = 1000 * np.arange(classes)[:, None] + np.arange(examples)[None, :]
    return jnp.asarray(np.broadcast_to(codes[..., None], (classes, examples, *extra)), jnp.float32)


def decode(x):
    code = np.asarray(x)[..., 0].astype(int)
    return code // 1000, code % 1000


def test_shapes_and_dtypes():
    ep = sample_episode(jax.random.key(0), coded_pool(), ways=5, shots=2, queries=3)
    assert ep.support.x.shape == (10, 2) and ep.query.x.shape == (15, 2)
    assert ep.support.y.shape == (10,) and ep.query.y.shape == (15,)
    assert ep.support.y.dtype == jnp.int32


def test_labels_are_remapped_consistently():
    ep = sample_episode(jax.random.key(1), coded_pool(), ways=4, shots=3, queries=2)
    s_class, _ = decode(ep.support.x)
    q_class, _ = decode(ep.query.x)
    np.testing.assert_array_equal(np.asarray(ep.support.y), np.repeat(np.arange(4), 3))
    mapping = {}
    for cls, label in zip(
        np.concatenate([s_class, q_class]), np.concatenate([ep.support.y, ep.query.y]), strict=True
    ):
        assert mapping.setdefault(int(label), int(cls)) == cls
    assert len(set(mapping.values())) == 4  # distinct classes get distinct labels


def test_examples_distinct_within_class_and_support_query_disjoint():
    ep = sample_episode(jax.random.key(2), coded_pool(), ways=5, shots=4, queries=5)
    s_class, s_idx = decode(ep.support.x)
    q_class, q_idx = decode(ep.query.x)
    pairs = list(
        zip(np.concatenate([s_class, q_class]), np.concatenate([s_idx, q_idx]), strict=True)
    )
    assert len(set(pairs)) == len(pairs)


def test_deterministic_by_key_and_different_across_keys():
    pool = coded_pool()
    a = sample_episode(jax.random.key(3), pool, ways=5, shots=1, queries=2)
    b = sample_episode(jax.random.key(3), pool, ways=5, shots=1, queries=2)
    c = sample_episode(jax.random.key(4), pool, ways=5, shots=1, queries=2)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a.query.x, c.query.x)


def test_every_class_and_example_reachable():
    pool = coded_pool(classes=20, examples=6)
    sampler = pool_sampler(pool, ways=5, shots=1, queries=1)
    batch = sample_batch(sampler, jax.random.key(5), 400)
    classes, idx = decode(batch.support.x)
    assert set(classes.ravel()) == set(range(20))
    assert set(idx.ravel()) == set(range(6))
    # Label 0 is a uniformly random class, not always the lowest one.
    first = classes[:, 0]
    assert len(set(first)) == 20


def test_vmap_over_keys_matches_single_calls():
    pool = coded_pool()
    keys = jax.random.split(jax.random.key(6), 3)
    batch = jax.vmap(lambda k: sample_episode(k, pool, ways=3, shots=1, queries=2))(keys)
    assert batch.query.x.shape == (3, 6, 2)
    for i, k in enumerate(keys):
        single = sample_episode(k, pool, ways=3, shots=1, queries=2)
        np.testing.assert_array_equal(batch.query.x[i], single.query.x)


def test_jitted_sampler_does_not_recompile():
    pool = coded_pool()
    fn = jax.jit(lambda k, p: sample_episode(k, p, ways=5, shots=1, queries=2))
    fn(jax.random.key(0), pool)
    fn(jax.random.key(1), pool + 1)
    assert fn._cache_size() == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ways=13, shots=1, queries=1), r"ways=13 .* 12 classes"),
        (dict(ways=5, shots=5, queries=5), r"shots \+ queries .* 9 examples"),
        (dict(ways=0, shots=1, queries=1), r"ways must be an integer >= 1"),
        (dict(ways=5, shots=0, queries=1), r"shots must be an integer >= 1"),
        (dict(ways=5, shots=1, queries=-1), r"queries must be an integer >= 1"),
        (dict(ways=2.5, shots=1, queries=1), r"ways must be an integer"),
    ],
)
def test_bad_configs_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_episode(jax.random.key(0), coded_pool(), **kwargs)
    with pytest.raises(ValueError, match=match):
        pool_sampler(coded_pool(), **kwargs)


def test_pool_of_wrong_rank_raises():
    with pytest.raises(ValueError, match=r"pool must have rank >= 2"):
        pool_sampler(np.zeros(10), ways=2, shots=1, queries=1)


# Each valid example compiles the sampler's primitives for new shapes; test_properties
# checks the same well-formedness with more assertions per example.
@settings(max_examples=12, deadline=None)
@given(
    classes=st.integers(1, 12),
    examples=st.integers(2, 10),
    ways=st.integers(1, 14),
    shots=st.integers(1, 6),
    queries=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_valid_configs_give_well_formed_episodes(
    classes, examples, ways, shots, queries, seed
):
    pool = coded_pool(classes, examples, extra=(1,))
    valid = ways <= classes and shots + queries <= examples
    if not valid:
        with pytest.raises(ValueError):
            sample_episode(jax.random.key(seed), pool, ways=ways, shots=shots, queries=queries)
        return
    ep = sample_episode(jax.random.key(seed), pool, ways=ways, shots=shots, queries=queries)
    assert ep.support.x.shape == (ways * shots, 1) and ep.query.x.shape == (ways * queries, 1)
    assert set(np.asarray(ep.query.y)) == set(range(ways))
    s_class, _ = decode(ep.support.x)
    assert len(set(s_class)) == ways
