import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metajax import Episode, Split
from metajax.core.episodes import sample_episode
from metajax.learners.model.sequence import (
    episode_sequence,
    instance_numbers,
    offset_labels,
    split_sequence,
)


def tagged_episode(key, ways=4, shots=2, queries=3, classes=9, examples=7):
    """An episode whose inputs carry (global class, example index): pairings can be traced."""
    pool = np.stack(
        np.meshgrid(np.arange(classes), np.arange(examples), indexing="ij"), axis=-1
    ).astype(np.float32)
    return sample_episode(key, jnp.asarray(pool), ways=ways, shots=shots, queries=queries)


def test_sequence_is_a_shuffle_of_support_and_query_with_offset_labels():
    episode = tagged_episode(jax.random.key(0))
    seq = jax.jit(lambda e, k: episode_sequence(e, k, ways=4, instances=5))(
        episode, jax.random.key(1)
    )
    x, y = np.asarray(seq.x), np.asarray(seq.y)
    assert x.shape == (20, 2) and seq.previous_label.shape == (20, 4)
    # The same (class, example) pairs as the episode, each still with its own label.
    both_x = np.concatenate([episode.support.x, episode.query.x])
    both_y = np.concatenate([episode.support.y, episode.query.y])
    assert sorted(map(tuple, x.tolist())) == sorted(map(tuple, both_x.tolist()))
    pairing = {tuple(a): int(b) for a, b in zip(both_x.tolist(), both_y.tolist(), strict=True)}
    assert [pairing[tuple(a)] for a in x.tolist()] == y.tolist()
    # Shuffled: not the sampler's class-major support-then-query order.
    assert y.tolist() != both_y.tolist()
    # The label input at t is exactly one_hot(y[t-1]); at t = 0 it is the null label.
    previous = np.asarray(seq.previous_label)
    np.testing.assert_array_equal(previous[0], 0.0)
    np.testing.assert_array_equal(previous[1:], np.eye(4)[y[:-1]])
    assert (previous.sum(-1) == np.r_[0, np.ones(19)]).all()


def test_shuffle_depends_on_the_key_and_is_reproducible():
    episode = tagged_episode(jax.random.key(2))
    make = jax.jit(lambda k: episode_sequence(episode, k, ways=4, instances=5).y)
    a, b, c = make(jax.random.key(3)), make(jax.random.key(3)), make(jax.random.key(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_instance_numbers_count_presentations_of_each_class():
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.integers(0, 3, size=12)
        expected, seen = [], {}
        for label in y:
            seen[label] = seen.get(label, 0) + 1
            expected.append(seen[label])
        assert jax.jit(instance_numbers, static_argnums=1)(jnp.asarray(y), 3).tolist() == expected
    seq = episode_sequence(
        tagged_episode(jax.random.key(5)), jax.random.key(6), ways=4, instances=5
    )
    instance, y = np.asarray(seq.instance), np.asarray(seq.y)
    for k in range(1, 6):  # every class is presented exactly once at each instance number
        assert sorted(y[instance == k].tolist()) == [0, 1, 2, 3]


def test_offset_labels_and_split_sequence_in_order():
    y = jnp.array([1, 1, 0, 2])
    np.testing.assert_array_equal(offset_labels(y, 3), [[0, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]])
    seq = split_sequence(Split(jnp.arange(4.0)[:, None], y), None, ways=3)
    np.testing.assert_array_equal(seq.x[:, 0], [0, 1, 2, 3])
    assert seq.instance.tolist() == [1, 2, 1, 1]


def test_vmapped_over_tasks_without_recompiling():
    keys = jax.random.split(jax.random.key(7), 6)
    episodes = jax.vmap(tagged_episode)(keys)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def batch(episodes, keys):
        return jax.vmap(lambda e, k: episode_sequence(e, k, ways=4, instances=5))(episodes, keys)

    seq = batch(episodes, keys)
    assert seq.x.shape == (6, 20, 2) and seq.instance.shape == (6, 20)
    batch(jax.vmap(tagged_episode)(jax.random.split(jax.random.key(8), 6)), keys)


def test_bad_inputs_raise_clear_errors():
    episode = tagged_episode(jax.random.key(9))  # 4 ways, 5 examples per class
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"ways \* instances = 4 \* 4 = 16; instances must be"):
        episode_sequence(episode, key, ways=4, instances=4)
    with pytest.raises(ValueError, match=r"ways \* instances = 5 \* 5 = 25"):
        episode_sequence(episode, key, ways=5, instances=5)
    with pytest.raises(ValueError, match=r"instances must be an integer >= 1"):
        episode_sequence(episode, key, ways=4, instances=0)
    with pytest.raises(ValueError, match=r"ways must be an integer >= 1"):
        offset_labels(jnp.zeros(3, int), 0)
    with pytest.raises(ValueError, match=r"labels must lie in 0..2 \(ways=3\)"):
        split_sequence(episode.support, key, ways=3)  # the support holds label 3
    bad = Episode(Split(episode.support.x, episode.support.y.astype(float)), episode.query)
    with pytest.raises(ValueError, match=r"support.y must be integer labels"):
        episode_sequence(bad, key, ways=4, instances=5)
    short = Episode(episode.support, Split(episode.query.x[:, :1], episode.query.y))
    with pytest.raises(ValueError, match=r"support.x features \(2,\) differ from query.x's"):
        episode_sequence(short, key, ways=4, instances=5)
