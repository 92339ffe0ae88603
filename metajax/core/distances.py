"""Distances and similarities shared by the metric and model families.

Prototypical, Matching, TapNet and IDeMe-Net compare embeddings with
:func:`pairwise_distance`; MANN reads its memory and Meta Networks attend over their
keys with :func:`cosine_similarity`. One copy here keeps the families independent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

DISTANCES = ("squared_euclidean", "cosine")


def prototypes(embeddings: jax.Array, labels: jax.Array, num_classes: int):
    """Class-mean embeddings ``[num_classes, d]`` and a mask of classes present in ``labels``.

    Classes may have unequal numbers of support examples; each prototype is the mean
    of its own class.
    """
    sums = jax.ops.segment_sum(embeddings, labels, num_segments=num_classes)
    counts = jax.ops.segment_sum(jnp.ones_like(labels, embeddings.dtype), labels, num_classes)
    return sums / jnp.maximum(counts, 1)[:, None], counts > 0


def pairwise_distance(queries: jax.Array, centres: jax.Array, kind: str) -> jax.Array:
    """``[n, m]`` distances: squared Euclidean (as a matmul), or one minus cosine similarity."""
    if kind == "squared_euclidean":
        return (
            jnp.sum(queries**2, -1)[:, None]
            - 2.0 * queries @ centres.T
            + jnp.sum(centres**2, -1)[None, :]
        )
    q = queries / jnp.maximum(jnp.linalg.norm(queries, axis=-1, keepdims=True), 1e-8)
    c = centres / jnp.maximum(jnp.linalg.norm(centres, axis=-1, keepdims=True), 1e-8)
    return 1.0 - q @ c.T


def cosine_similarity(keys: Array, memory: Array, eps: float = 1e-8) -> Array:
    """``K(k, M(i))`` for every key and slot: ``[..., slots]`` from keys ``[..., size]``.

    ``eps`` inside the square roots keeps an all-zero (empty) slot at similarity 0
    with a finite gradient.
    """
    key_norm = jnp.sqrt(jnp.sum(keys * keys, -1, keepdims=True) + eps)
    row_norm = jnp.sqrt(jnp.sum(memory * memory, -1) + eps)
    return (keys @ memory.T) / (key_norm * row_norm)
