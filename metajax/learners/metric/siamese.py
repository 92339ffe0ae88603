"""Siamese Networks for one-shot recognition (Koch, Zemel & Salakhutdinov, ICML DL workshop 2015).

Twin encoders with shared weights embed two images; a verification head turns the
component-wise L1 distance of the embeddings into the probability that the two
images show the same class, ``p = sigmoid(sum_j alpha_j |h1_j - h2_j| + b)``
(Koch et al.'s model section, with the bias of their final fully connected layer).
Training is binary cross-entropy on same/different pairs. A new task is solved
without adaptation: a query takes the label of the support example it is most
likely "same" as.

Paper defaults (Omniglot, 105x105 images): a convolutional twin of four conv layers
and a 4096-unit sigmoid layer; minibatches of 128 pairs, half same, half different;
SGD with momentum and layer-wise L2 regularisation; an 8-fold augmentation of the
pairs by random affine distortions: rotation in [-10, 10] degrees, shear in
[-0.3, 0.3], scale in [0.8, 1.2] and translation in [-2, 2] pixels, each component
applied with probability 0.5. Table 2 reports 92.0% on Lake's 20-way within-alphabet
one-shot task.

How it meets the shared trainer. ``loss`` scores pairs formed from an ordinary
:class:`~metajax.core.episodes.Episode`, so ``meta_train`` runs it unchanged with either
source of episodes:

* ``pairing="all"`` (default): every support-query pair of the episode, labelled
  same when their labels agree. An N-way episode has N times more different pairs
  than same pairs, so the two kinds are weighted to contribute equally, which is
  what Koch's balanced minibatches do. Any episode sampler works, including
  within-alphabet episodes, whose different pairs are the hard ones of the test.
* ``pairing="aligned"``: only ``(support[i], query[i])``, the pairs laid out by
  :func:`pair_sampler`: Koch's minibatch of independent balanced pairs, literally.

The default model is metajax's Conv-4 at 28x28, not Koch's 105x105 network.

``objective="episode"`` trains the same twin and head with an N-way cross-entropy over
each query's log-odds against the support set: Koch's model, trained for the ranking the
one-shot test asks for. On Lake's protocol it learns far faster than the pairwise loss
(``benchmarks/siamese_omniglot/README.md``); the default stays Koch's.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metajax.core.episodes import Episode, EpisodeSampler, Split, check_pool
from metajax.core.learner import Learner, checked
from metajax.core.losses import classification_loss
from metajax.core.validation import check_choice, check_float, check_int, check_key, check_model
from metajax.nets.backbones import Model, conv4

PAIRINGS = ("all", "aligned")
OBJECTIVES = ("verification", "episode")


class AffineDistortion(NamedTuple):
    """Ranges of Koch's random affine distortions; each component is on with ``p``.

    Attributes:
      rotation: degrees; the angle is uniform in ``[-rotation, rotation]``.
      shear: shears ``rho_x, rho_y`` uniform in ``[-shear, shear]``.
      scale: scales ``s_x, s_y`` uniform in ``[1 - scale, 1 + scale]``.
      translation: shifts ``t_x, t_y`` uniform in ``[-translation, translation]`` as a
        fraction of the image side: Koch's 2 pixels of 105, so that the same
        distortion fits any image size.
      p: probability that each of the four components is applied.
    """

    rotation: float = 10.0
    shear: float = 0.3
    scale: float = 0.2
    translation: float = 2.0 / 105.0
    p: float = 0.5


def check_distortion(distortion) -> None:
    """Raises a ``ValueError`` naming the field of an :class:`AffineDistortion` out of range."""
    if not isinstance(distortion, AffineDistortion):
        raise ValueError(f"distortion must be an AffineDistortion or None, got {distortion!r}")
    for field in ("rotation", "shear", "translation"):
        check_float(f"distortion.{field}", getattr(distortion, field), 0)
    # Scales 1 - scale must stay positive, or the affine map is singular.
    check_float("distortion.scale", distortion.scale, 0, 1, high_open=True)
    check_float("distortion.p", distortion.p, 0, 1)


def random_affine(key: jax.Array, image: jax.Array, distortion: AffineDistortion) -> jax.Array:
    """One image ``[height, width, channels]`` under a random affine map about its centre.

    The output pixel at ``q`` is the input bilinearly interpolated at
    ``A^-1 (q - c - t) + c`` with ``A = rotation @ shear @ scale``; pixels from
    outside the image are 0 (Omniglot's background after inversion).
    """
    if image.ndim != 3:
        raise ValueError(f"image must be [height, width, channels], got shape {image.shape}")
    return _warp(key, image, distortion)


def _warp(key: jax.Array, image: jax.Array, distortion: AffineDistortion) -> jax.Array:
    """:func:`random_affine` without the check of ``image``'s rank (:func:`distort` checks it)."""
    height, width = image.shape[:2]
    d = distortion
    on_key, rot_key, shear_key, scale_key, shift_key = jax.random.split(key, 5)
    on = jax.random.bernoulli(on_key, d.p, (4,)).astype(image.dtype)
    theta = jnp.deg2rad(jax.random.uniform(rot_key, (), image.dtype, -d.rotation, d.rotation))
    theta = theta * on[0]
    rho = jax.random.uniform(shear_key, (2,), image.dtype, -d.shear, d.shear) * on[1]
    scale = 1.0 + jax.random.uniform(scale_key, (2,), image.dtype, -d.scale, d.scale) * on[2]
    size = jnp.asarray([height, width], image.dtype)
    shift = jax.random.uniform(shift_key, (2,), image.dtype, -d.translation, d.translation)
    shift = shift * size * on[3]
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    rotate = jnp.stack([jnp.stack([cos, -sin]), jnp.stack([sin, cos])])
    shear = jnp.stack([jnp.stack([1.0, rho[0]]), jnp.stack([rho[1], 1.0])]).astype(image.dtype)
    forward = rotate @ shear @ jnp.diag(scale)
    centre = (size - 1.0) / 2.0
    rows, cols = jnp.meshgrid(
        jnp.arange(height, dtype=image.dtype), jnp.arange(width, dtype=image.dtype), indexing="ij"
    )
    grid = jnp.stack([rows.ravel(), cols.ravel()])
    source = jnp.linalg.solve(forward, grid - (centre + shift)[:, None]) + centre[:, None]

    def channel(plane):
        warped = jax.scipy.ndimage.map_coordinates(plane, tuple(source), order=1, cval=0.0)
        return warped.reshape(height, width)

    return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)


def distort(key: jax.Array, images: jax.Array, distortion: AffineDistortion) -> jax.Array:
    """Independent :func:`random_affine` draws for a batch ``[n, height, width, channels]``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.zeros((3, 28, 28, 1))
      >>> jax.jit(distort, static_argnums=2)(jax.random.key(0), x, AffineDistortion()).shape
      (3, 28, 28, 1)
    """
    if images.ndim != 4:
        raise ValueError(
            f"distortions need images [n, height, width, channels], got shape {images.shape}"
        )
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_warp, in_axes=(0, 0, None))(keys, images, distortion)


def init_head(key: jax.Array, features: int, dtype=jnp.float32) -> dict:
    """The verification head's ``alpha`` (``[features]``) and ``bias``.

    Koch et al.'s initialisation: fully connected weights from N(0, 0.2^2), much wider
    than their convolutions', and biases from N(0.5, 0.01^2).
    """
    weight_key, bias_key = jax.random.split(key)
    return {
        "alpha": 0.2 * jax.random.normal(weight_key, (features,), dtype),
        "bias": 0.5 + 0.01 * jax.random.normal(bias_key, (), dtype),
    }


def verification_logits(head: dict, a: jax.Array, b: jax.Array) -> jax.Array:
    """Log-odds of "same", ``sum_j alpha_j |a_j - b_j| + bias``, broadcast over leading axes.

    ``sigmoid`` of it is Koch's ``p`` (eq. 1); ``a`` and ``b`` are embeddings ``[..., d]``.
    """
    return jnp.abs(a - b) @ head["alpha"] + head["bias"]


def _balanced_mean(values, same):
    """Mean over same pairs and mean over different pairs, averaged over the kinds present."""
    same = same.astype(values.dtype)
    different = 1.0 - same
    n_same, n_different = same.sum(), different.sum()
    mean_same = (values * same).sum() / jnp.maximum(n_same, 1.0)
    mean_different = (values * different).sum() / jnp.maximum(n_different, 1.0)
    has_same, has_different = (
        (n_same > 0).astype(values.dtype),
        (n_different > 0).astype(values.dtype),
    )
    return (has_same * mean_same + has_different * mean_different) / (has_same + has_different)


def siamese(
    model: Model | None = None,
    *,
    pairing: str = "all",
    distortion: AffineDistortion | None = None,
    objective: str = "verification",
) -> Learner:
    """Siamese Networks (Koch et al. 2015) as a :class:`~metajax.core.learner.Learner`.

    ``params`` are ``{"encoder": ..., "head": {"alpha", "bias"}}``. The images of an
    episode are embedded in one pass, so batch norm in the encoder uses the episode's
    statistics, as in :func:`~metajax.learners.metric.protonet.protonet`.

    With ``objective="verification"`` (Koch's), ``loss`` is the class-balanced binary
    cross-entropy of the verification head on the episode's pairs (see the module
    docstring for ``pairing``); its metrics are ``loss`` and ``accuracy``, the
    balanced same/different verification accuracy (not N-way accuracy). With
    ``objective="episode"`` it is the N-way cross-entropy of ``predict``'s logits
    against the query labels, and ``accuracy`` is N-way: the same twin and head,
    trained for the test's decision (rank the right support example above the
    others) rather than for a same/different threshold on each pair alone.
    ``predict`` returns, for each query, the log-odds of "same" against its best
    support example of every label: columns are labels
    ``0..n_support-1`` (protonet's convention), ``-inf`` for labels absent from the
    support set, so argmax picks the support example with the highest ``p``.

    Koch's layer-wise L2 penalty is an optimizer matter here
    (``optax.add_decayed_weights``).

    Args:
      model: the twin encoder; Conv-4 with 64 filters by default (Koch's network is
        for 105x105 images).
      pairing: ``"all"`` support-query pairs of any episode, or ``"aligned"``
        ``(support[i], query[i])`` pairs from :func:`pair_sampler`.
      distortion: random affine distortions of every training image (Koch et al.),
        drawn from ``loss``'s key; ``None`` to train on the images as they are.
        ``predict`` never distorts.
      objective: ``"verification"`` (pairwise binary cross-entropy, Koch et al.) or
        ``"episode"`` (N-way cross-entropy over the head's log-odds; needs
        ``pairing="all"``).

    Example:
      >>> import jax
      >>> from metajax.core.episodes import sample_episode
      >>> pool = jax.random.uniform(jax.random.key(0), (10, 8, 28, 28, 1))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=5, shots=1, queries=2)
      >>> learner = siamese(distortion=AffineDistortion())
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = jax.jit(learner.loss)(params, episode, jax.random.key(3))
      >>> sorted(metrics)
      ['accuracy', 'loss']
      >>> jax.eval_shape(learner.predict, params, episode.support, episode.query.x, None).shape
      (10, 5)
    """
    check_model("model", model, optional=True)
    check_choice("pairing", pairing, PAIRINGS)
    check_choice("objective", objective, OBJECTIVES)
    if objective == "episode" and pairing != "all":
        raise ValueError(
            f"objective='episode' ranks every support example for each query, so it needs "
            f"pairing='all', got pairing={pairing!r}"
        )
    if distortion is not None:
        check_distortion(distortion)
    model = conv4() if model is None else model

    def embed(params, x):
        h = model.apply(params["encoder"], x)
        return h.reshape(h.shape[0], -1)

    def init(key, episode: Episode):
        encoder_key, head_key = jax.random.split(key)
        encoder = model.init(encoder_key, episode.support.x)
        features = int(np.prod(jax.eval_shape(model.apply, encoder, episode.support.x).shape[1:]))
        return {"encoder": encoder, "head": init_head(head_key, features)}

    def best_per_label(params, h, support_y):
        """Log-odds of each query against its best support example of every label."""
        n_support = support_y.shape[0]
        scores = verification_logits(params["head"], h[n_support:, None], h[None, :n_support])
        # segment_max gives -inf to labels with no support example.
        return jax.ops.segment_max(scores.T, support_y, num_segments=n_support).T

    def predict(params, support: Split, query_x, key=None):
        del key  # Deterministic: distortions are a training device.
        h = embed(params, jnp.concatenate([support.x, query_x]))
        return best_per_label(params, h, support.y)

    def loss(params, episode: Episode, key=None):
        support, query = episode
        n_support, n_query = support.x.shape[0], query.x.shape[0]
        if pairing == "aligned" and n_support != n_query:
            raise ValueError(
                f"pairing='aligned' pairs support[i] with query[i], so support and query "
                f"must have equal sizes, got {n_support} and {n_query}"
            )
        x = jnp.concatenate([support.x, query.x])
        if distortion is not None:
            # Only this loss needs a key (its distortions are random), so it checks it.
            check_key("key", key)
            x = distort(key, x, distortion)
        h = embed(params, x)
        if objective == "episode":
            return classification_loss(best_per_label(params, h, support.y), query.y)
        hs, hq = h[:n_support], h[n_support:]
        if pairing == "all":
            logits = verification_logits(params["head"], hq[:, None], hs[None])
            same = query.y[:, None] == support.y[None, :]
        else:
            logits = verification_logits(params["head"], hs, hq)
            same = support.y == query.y
        bce = optax.sigmoid_binary_cross_entropy(logits, same.astype(logits.dtype))
        value = _balanced_mean(bce, same)
        accuracy = _balanced_mean(((logits > 0) == same).astype(logits.dtype), same)
        return value, {"loss": value, "accuracy": accuracy}

    return checked(Learner(init=init, loss=loss, predict=predict), min_support=1)


def pair_sampler(pool, *, pairs: int = 128) -> EpisodeSampler:
    """Koch's verification minibatches: ``pairs`` image pairs, half same, half different.

    Pair ``i`` is ``(support.x[i], query.x[i])``, for ``siamese(pairing="aligned")``.
    The first ``pairs // 2`` are same pairs (two distinct examples of one class), the
    rest different pairs (examples of two classes). The ``1.5 * pairs`` classes of an
    episode are distinct and labelled ``0..`` in the order drawn, so labels agree
    exactly when classes do and ``pairing="all"`` labels every cross pair correctly.

    Only ``pool``'s classes are ever drawn: give it the meta-training pool.

    Args:
      pool: ``[classes, examples, *features]`` with at least ``1.5 * pairs`` classes and
        two examples per class.
      pairs: pairs per episode, even; Koch's minibatch is 128.

    Example:
      >>> import numpy as np
      >>> sampler = pair_sampler(np.zeros((30, 20, 28, 28, 1)), pairs=8)
      >>> episode = jax.jit(sampler.sample)(jax.random.key(0), sampler.data)
      >>> (episode.support.y == episode.query.y).tolist()
      [True, True, True, True, False, False, False, False]
    """
    classes, examples = check_pool(pool)
    check_int("pairs", pairs, 2, why=" and even")
    if pairs % 2:
        raise ValueError(f"pairs must be even (half same, half different), got {pairs}")
    half = pairs // 2
    needed = 3 * half
    if needed > classes:
        raise ValueError(
            f"pairs={pairs} needs {needed} distinct classes (pairs/2 same + 2 * pairs/2 "
            f"different) but the pool has {classes}; allowed: pairs <= {2 * (classes // 3)}"
        )
    if examples < 2:
        raise ValueError(f"pool needs at least 2 examples per class for same pairs, got {examples}")

    def sample(key, data):
        class_key, same_key, different_key = jax.random.split(key, 3)
        chosen = jax.random.permutation(class_key, data.shape[0])[:needed]
        same_keys = jax.random.split(same_key, half)
        # Two distinct examples of each same pair's class.
        same_examples = jax.vmap(lambda k: jax.random.permutation(k, examples)[:2])(same_keys)
        different_examples = jax.random.randint(different_key, (half, 2), 0, examples)
        slots = jnp.arange(needed, dtype=jnp.int32)
        same_slots, different_slots = slots[:half], slots[half:].reshape(half, 2)
        support_slots = jnp.concatenate([same_slots, different_slots[:, 0]])
        query_slots = jnp.concatenate([same_slots, different_slots[:, 1]])
        support_examples = jnp.concatenate([same_examples[:, 0], different_examples[:, 0]])
        query_examples = jnp.concatenate([same_examples[:, 1], different_examples[:, 1]])
        return Episode(
            support=Split(x=data[chosen[support_slots], support_examples], y=support_slots),
            query=Split(x=data[chosen[query_slots], query_examples], y=query_slots),
        )

    return EpisodeSampler(sample=sample, data=jnp.asarray(pool))
