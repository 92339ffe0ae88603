"""Omniglot alphabets, and Lake's within-alphabet N-way one-shot episodes.

Lake, Salakhutdinov & Tenenbaum (2015) and Koch, Zemel & Salakhutdinov (2015)
score one-shot classification on runs of 20 characters drawn from one alphabet,
which is harder than 20 characters drawn from anywhere: characters of one
alphabet share strokes. Each run has two drawers: one drew the 20 training
images (one per character), the other the 20 test images.

The alphabet of a class is the first part of its name in
:func:`metajax.datasets.load_omniglot`'s ``class_names`` (``"Alphabet/characterNN"``,
the archives' own folder names), so nothing here reads the archives again.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metajax.core.episodes import Episode, EpisodeSampler, Split, check_episode_config, check_pool


def omniglot_alphabets(class_names) -> tuple[np.ndarray, tuple[str, ...]]:
    """The alphabet of every class: ``(ids, names)`` with ``names[ids[c]]`` that of class ``c``.

    Args:
      class_names: one ``"Alphabet/characterNN"`` name per class (``rotDDD`` suffixes of the
        Vinyals protocol are allowed: a rotated character stays in its alphabet).

    Example:
      >>> ids, names = omniglot_alphabets(["Greek/character01", "Greek/character02", "Futurama/c1"])
      >>> ids.tolist(), names
      ([1, 1, 0], ('Futurama', 'Greek'))
    """
    alphabets = []
    for name in class_names:
        if not isinstance(name, str) or "/" not in name:
            raise ValueError(f"class_names must be 'Alphabet/character' names, got {name!r}")
        alphabets.append(name.split("/", 1)[0])
    names = tuple(sorted(set(alphabets)))
    index = {n: i for i, n in enumerate(names)}
    return np.asarray([index[a] for a in alphabets], np.int32), names


def within_alphabet_sampler(
    pool,
    alphabets,
    *,
    ways: int = 20,
    shots: int = 1,
    queries: int = 1,
    shared_drawers: bool = True,
) -> EpisodeSampler:
    """Episodes whose ``ways`` classes all come from one alphabet (Lake's one-shot runs).

    The alphabet is drawn uniformly among those with at least ``ways`` characters,
    then ``ways`` of its characters without replacement. With ``shared_drawers``,
    the same drawers give every class's support and query examples, as in Lake's
    runs (each run pairs one drawer's 20 images with another's); otherwise every
    class draws its own. Labels are ``0..ways-1`` in the order drawn.

    The defaults (``ways=20, shots=1, queries=1``) make one episode one of Lake's
    runs: 20 one-shot trials.

    Args:
      pool: ``[classes, examples, *features]``; for Omniglot the examples are the 20
        drawers in order.
      alphabets: ``[classes]`` integer group of every class (from
        :func:`omniglot_alphabets`).
      ways: characters per episode.
      shots: support examples per character.
      queries: query examples per character.
      shared_drawers: one draw of examples for all classes of an episode.

    Example:
      >>> import numpy as np
      >>> pool = np.zeros((6, 20, 4))
      >>> sampler = within_alphabet_sampler(pool, [0, 0, 0, 1, 1, 1], ways=3)
      >>> sampler.sample(jax.random.key(0), sampler.data).support.y.tolist()
      [0, 1, 2]
    """
    classes, examples = check_pool(pool)
    alphabets = np.asarray(alphabets)
    if alphabets.shape != (classes,) or not np.issubdtype(alphabets.dtype, np.integer):
        raise ValueError(
            f"alphabets must be one integer per class, shape ({classes},), "
            f"got {alphabets.dtype}{alphabets.shape}"
        )
    check_episode_config(
        ways=ways, shots=shots, queries=queries, classes=classes, examples=examples
    )
    groups = [np.flatnonzero(alphabets == a) for a in np.unique(alphabets)]
    eligible = [g for g in groups if len(g) >= ways]
    if not eligible:
        raise ValueError(
            f"ways={ways} is larger than every alphabet (the largest has "
            f"{max(len(g) for g in groups)} classes); allowed: ways <= the largest alphabet"
        )
    # Padded [alphabets, max_characters] table, so that sampling has static shapes.
    table = np.zeros((len(eligible), max(len(g) for g in eligible)), np.int32)
    for row, g in enumerate(eligible):
        table[row, : len(g)] = g
    sizes = np.asarray([len(g) for g in eligible], np.int32)
    per_class = shots + queries

    def sample(key, data):
        pool, table, sizes = data
        alphabet_key, class_key, example_key = jax.random.split(key, 3)
        a = jax.random.randint(alphabet_key, (), 0, table.shape[0])
        # A random order of the alphabet's characters, padding slots sorted last.
        order = jax.random.uniform(class_key, (table.shape[1],))
        order = jnp.where(jnp.arange(table.shape[1]) < sizes[a], order, 2.0)
        chosen = table[a, jnp.argsort(order)[:ways]]
        if shared_drawers:
            drawers = jax.random.permutation(example_key, examples)[:per_class]
            picks = jnp.broadcast_to(drawers, (ways, per_class))
        else:
            keys = jax.random.split(example_key, ways)
            picks = jax.vmap(lambda k: jax.random.permutation(k, examples)[:per_class])(keys)
        x = pool[chosen[:, None], picks]
        labels = jnp.broadcast_to(jnp.arange(ways, dtype=jnp.int32)[:, None], (ways, per_class))
        features = x.shape[2:]
        return Episode(
            support=Split(
                x=x[:, :shots].reshape((ways * shots, *features)),
                y=labels[:, :shots].reshape(ways * shots),
            ),
            query=Split(
                x=x[:, shots:].reshape((ways * queries, *features)),
                y=labels[:, shots:].reshape(ways * queries),
            ),
        )

    return EpisodeSampler(
        sample=sample, data=(jnp.asarray(pool), jnp.asarray(table), jnp.asarray(sizes))
    )
