"""IDeMe-Net: Image Deformation Meta-Networks (Chen, Fu, Wang, Ma, Liu & Hebert, CVPR 2019).

A one-shot support set is augmented with deformed images. A deformation
sub-network reads a probe image (a support example) beside a gallery image (an
image of a meta-training, "base", class) and predicts one weight per patch of a
``grid x grid`` partition of the image; the deformed image fuses the two patch by
patch (§3.2)::

    deformed_i = w_i * probe_i + (1 - w_i) * gallery_i      for patch i = 1..grid**2

and takes the probe's label. An embedding sub-network with a prototype classifier
(§3.3) then classifies the queries by their squared Euclidean distance to the class
means of the augmented support set (each probe and its ``generated`` deformed
images), as in Prototypical Networks.

What follows the paper and the authors' released code (github.com/tankche1/IDeMe-Net):

* 3x3 patches (``grid=3``); the patch boundaries are multiples of ``side // grid``,
  the last patch taking the remainder (the released code's 0/74/148/224 for 224
  pixels; 0/9/18/28 for Omniglot's 28).
* The deformation sub-network reads the channel-wise concatenation of probe and
  gallery with one small convolutional encoder and a linear layer to the
  ``grid**2`` weights (the released code's single-branch ``GNet``; the paper also
  describes two ResNet-18 branches, which the authors found no better).
* Gallery images are chosen as in the released code: the ``neighbours`` gallery
  images nearest to the probe's class prototype in the current embedding, one drawn
  at random for each deformed image (``chooseNum=15`` for 1-shot). The gallery is a
  fixed array of base-class images held by the learner (the released code keeps
  30 per base class); it is used at meta-test time too, where the probes are of
  novel classes and the gallery stays base-class.
* ``generated=7`` deformed images per probe: the released 1-shot command
  (``--augnum 7``). The augmented support holds each probe once plus its deformed
  images, so prototypes are means over ``1 + generated`` images per shot.

What differs, and why:

* Training is joint and end to end through the shared trainer: the query
  cross-entropy of the prototype classifier is differentiated through both
  sub-networks at once. The paper pretrains the embedding and then alternates,
  updating the deformation sub-network on the prototype loss and the embedding
  on a base-class classification loss of the deformed images. A single episodic
  objective keeps IDeMe-Net a pure ``Learner`` that any trainer can run.
* The prototype classifier only; the paper's optional linear classifier over the
  base classes (used for the embedding's loss) is left out, since it needs global
  class labels that episodes do not carry.
* The weights pass through a sigmoid, so each patch is a convex blend of probe and
  gallery; the released code leaves them unconstrained (a linear output), which
  in joint training lets the deformed images drift outside the image range.
* The paper's backbone is ResNet-18 on 224x224 ImageNet images; here the embedding
  is any :class:`~metajax.nets.backbones.Model` (Conv-4 by default) and the deformation
  encoder is a Conv-4-style stack sized for small images. The released code's
  learned scale on the distances ("little effect", their comment) is left out.
* Gallery candidates: the released code ranks its whole gallery by features
  computed once with a frozen embedding. Here the embedding changes every step, so
  ``candidates`` random gallery images are embedded per episode (without gradient)
  and ranked; ``candidates=None`` ranks the whole gallery every episode.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from metajax.core.distances import pairwise_distance, prototypes
from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import classification_loss
from metajax.core.validation import check_choice, check_floating, check_int, check_model
from metajax.nets.backbones import BatchStatNorm, Model, conv4, max_pool_2x2

SELECTIONS = ("nearest", "random")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def patch_index(height: int, width: int, grid: int) -> np.ndarray:
    """``[height, width]`` ints: the patch ``row * grid + column`` each pixel belongs to.

    Patch boundaries are multiples of ``side // grid``; the last row and column of
    patches take the remainder.

    Example:
      >>> patch_index(4, 5, 2)
      array([[0, 0, 1, 1, 1],
             [0, 0, 1, 1, 1],
             [2, 2, 3, 3, 3],
             [2, 2, 3, 3, 3]])
    """
    check_int("height", height, 1)
    check_int("width", width, 1)
    if not _is_int(grid) or grid < 1 or grid > min(height, width):
        raise ValueError(
            f"grid must be an integer in 1..{min(height, width)} (the image's shorter side), "
            f"got {grid!r}"
        )
    return _patch_index(height, width, grid)


def _patch_index(height: int, width: int, grid: int) -> np.ndarray:
    """:func:`patch_index` unchecked: the factory checked ``grid`` against the images."""
    rows = np.minimum(np.arange(height) // (height // grid), grid - 1)
    columns = np.minimum(np.arange(width) // (width // grid), grid - 1)
    return rows[:, None] * grid + columns[None, :]


def deform(probe, gallery, weights, *, grid: int = 3):
    """Fuses probe and gallery images patch by patch: ``w_i * probe_i + (1 - w_i) * gallery_i``.

    Args:
      probe: images ``[n, height, width, channels]``.
      gallery: images of the same shape.
      weights: ``[n, grid * grid]``, patch ``row * grid + column`` (row-major).
      grid: patches per side.

    Returns:
      The deformed images, shaped like ``probe``.

    Example:
      >>> import jax.numpy as jnp
      >>> probe, gallery = jnp.ones((1, 4, 4, 1)), jnp.zeros((1, 4, 4, 1))
      >>> out = deform(probe, gallery, jnp.array([[1.0, 0.0, 0.0, 0.5]]), grid=2)
      >>> out[0, :, :, 0].tolist()
      [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]]
    """
    if probe.ndim != 4 or gallery.shape != probe.shape:
        raise ValueError(
            f"probe and gallery must be images [n, height, width, channels] of one shape, "
            f"got {probe.shape} and {gallery.shape}"
        )
    if weights.shape != (probe.shape[0], grid * grid):
        raise ValueError(
            f"weights must be [n, grid * grid] = {(probe.shape[0], grid * grid)}, "
            f"got {weights.shape}"
        )
    return _deform(probe, gallery, weights, patch_index(probe.shape[1], probe.shape[2], grid))


def _deform(probe, gallery, weights, index):
    """:func:`deform` unchecked, for :class:`DeformationNet`.

    There the weights have the right shape by construction, and the learner draws
    gallery images shaped like its probes.
    """
    w = weights[:, index][..., None]  # [n, height, width, 1]
    return w * probe + (1 - w) * gallery


class DeformationNet(nn.Module):
    """The deformation sub-network: probe and gallery to patch weights and a deformed image.

    ``blocks`` of 3x3 convolution, batch norm (on the batch's statistics), ReLU and
    2x2 max-pool read the channel-wise concatenation of probe and gallery; a linear
    layer and a sigmoid give ``grid * grid`` weights in ``(0, 1)``.

    Returns ``(deformed, weights)``: images shaped like ``probe`` and ``[n, grid**2]``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> net = DeformationNet(filters=4, blocks=1)
      >>> x = jnp.ones((2, 6, 6, 1))
      >>> variables = net.init(jax.random.key(0), x, x)
      >>> [a.shape for a in net.apply(variables, x, x)]
      [(2, 6, 6, 1), (2, 9)]
    """

    filters: int = 32
    blocks: int = 4
    grid: int = 3

    @nn.compact
    def __call__(self, probe, gallery):
        x = jnp.concatenate([probe, gallery], axis=-1)
        for _ in range(self.blocks):
            x = nn.Conv(self.filters, (3, 3), padding="SAME", use_bias=False)(x)
            x = max_pool_2x2(nn.relu(BatchStatNorm()(x)))
        logits = nn.Dense(self.grid * self.grid)(x.reshape(x.shape[0], -1))
        weights = jax.nn.sigmoid(logits)
        index = _patch_index(probe.shape[1], probe.shape[2], self.grid)
        return _deform(probe, gallery, weights, index), weights


def idemenet(
    *,
    gallery,
    model: Model | None = None,
    generated: int = 7,
    grid: int = 3,
    selection: str = "nearest",
    neighbours: int = 15,
    candidates: int | None = None,
    deformation_filters: int = 32,
    deformation_blocks: int = 4,
) -> Learner:
    """IDeMe-Net (Chen et al. 2019): a prototype classifier on deformation-augmented support.

    Each support example (probe) gets ``generated`` deformed images, each fused with a
    gallery image by :class:`DeformationNet`, labelled like the probe. Prototypes are
    the class means of the embedded probes and deformed images; logits are minus the
    squared Euclidean distances of the queries to them. The deformed images, the
    support and the queries are embedded in one pass of ``model``, so its batch norm
    uses the statistics of the whole augmented episode. Both sub-networks are trained
    jointly by the query cross-entropy (see the module docstring for how this
    differs from the paper's alternating schedule). Parameters are
    ``{"embedding": ..., "deformation": ...}``.

    Logits have one column per possible label ``0..n_support-1``, columns of labels
    absent from the support set ``-inf``, as in :func:`metajax.learners.metric.protonet`.

    ``predict`` and ``loss`` are random (the gallery draws) and need a PRNG key.

    Args:
      gallery: base-class images ``[n, height, width, channels]`` (meta-training
        classes only: at meta-test time the deformed images of novel classes are
        fused with these); images of the episodes must have this shape.
      model: the embedding network; Conv-4 with 64 filters by default.
      generated: deformed images per support example (the released 1-shot setting, 7).
      grid: patches per side (3, the paper's 3x3).
      selection: ``"nearest"``: draw each gallery image from the ``neighbours``
        candidates nearest to the probe's class prototype (the released code);
        ``"random"``: draw gallery images uniformly.
      neighbours: how many nearest candidates to draw from (15, the released
        1-shot ``chooseNum``).
      candidates: gallery images drawn per episode and ranked for ``"nearest"``;
        ``None`` ranks the whole gallery each episode (costly for a large one).
      deformation_filters: channels of the deformation encoder's convolutions.
      deformation_blocks: conv blocks of the deformation encoder; images must be at
        least ``2**deformation_blocks`` pixels on a side.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from metajax.core.episodes import sample_episode
      >>> from metajax.nets.backbones import mlp
      >>> pool = jax.random.uniform(jax.random.key(0), (10, 6, 8, 8, 1))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=3, shots=1, queries=2)
      >>> learner = idemenet(gallery=pool[5:, 0], model=mlp(hidden=(16,)), generated=2,
      ...                    neighbours=2, deformation_filters=4, deformation_blocks=1)
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = learner.loss(params, episode, jax.random.key(3))
      >>> learner.predict(params, episode.support, episode.query.x, jax.random.key(4)).shape
      (6, 3)
    """
    shape = getattr(gallery, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(
            f"gallery must be images [n, height, width, channels] (rank 4), got "
            f"{type(gallery).__name__ if shape is None else f'shape {tuple(shape)}'}"
        )
    n_gallery, height, width = int(shape[0]), int(shape[1]), int(shape[2])
    if n_gallery < 1:
        raise ValueError("gallery must hold at least one image, got an empty gallery")
    check_floating("gallery", gallery)
    check_model("model", model, optional=True)
    image_shape = tuple(int(s) for s in shape[1:])
    check_int("generated", generated, 1)
    check_int("neighbours", neighbours, 1)
    check_int("deformation_filters", deformation_filters, 1)
    check_int("deformation_blocks", deformation_blocks, 0)
    if 2**deformation_blocks > min(height, width):
        raise ValueError(
            f"deformation_blocks={deformation_blocks} pools {height}x{width} images below 1x1; "
            f"allowed: 2**deformation_blocks <= {min(height, width)}"
        )
    patch_index(height, width, grid)  # validates grid against the image size
    check_choice("selection", selection, SELECTIONS)
    if candidates is not None and (
        not _is_int(candidates) or not neighbours <= candidates <= n_gallery
    ):
        raise ValueError(
            f"candidates must be None or an integer in {neighbours}..{n_gallery} "
            f"(neighbours..gallery size), got {candidates!r}"
        )
    pool = candidates if candidates is not None else n_gallery
    if selection == "nearest" and neighbours > pool:
        raise ValueError(
            f"neighbours must be <= the {pool} ranked gallery images, got {neighbours}"
        )
    # Held as NumPy and turned into a constant of the caller's dtype under the trace.
    gallery = np.asarray(gallery)
    model = conv4() if model is None else model
    deformation = DeformationNet(
        filters=int(deformation_filters), blocks=int(deformation_blocks), grid=int(grid)
    )

    def check_images(support: Split, query_x, query_y=None):
        del query_x, query_y  # checked() compares the queries' shape with the support's
        if support.x.shape[1:] != image_shape:
            raise ValueError(
                f"gallery images {image_shape} and the episode's images {support.x.shape[1:]} "
                "must have one shape"
            )

    def draw_gallery(params, support: Split, key):
        """Gallery images ``[n_support * generated, *image]``, probe-major."""
        n = support.x.shape[0]
        images = jnp.asarray(gallery, support.x.dtype)
        if selection == "random":
            return images[jax.random.randint(key, (n * generated,), 0, n_gallery)]
        candidate_key, pick_key = jax.random.split(key)
        if candidates is not None:
            chosen = jax.random.choice(candidate_key, n_gallery, (candidates,), replace=False)
            images = images[chosen]
        # The choice of gallery images is discrete: no gradient flows through the
        # ranking, so the embedding is applied to constant parameters here.
        frozen = jax.lax.stop_gradient(params["embedding"])
        embedded = model.apply(frozen, jnp.concatenate([support.x, images]))
        centres, _ = prototypes(embedded[:n], support.y, n)
        distances = pairwise_distance(centres[support.y], embedded[n:], "squared_euclidean")
        _, nearest = jax.lax.top_k(-distances, neighbours)  # [n, neighbours]
        picks = jax.random.randint(pick_key, (n, generated), 0, neighbours)
        return images[jnp.take_along_axis(nearest, picks, axis=1).reshape(-1)]

    def augment(params, support: Split, key) -> Split:
        """The support set plus ``generated`` deformed images per example, with their labels."""
        probes = jnp.repeat(support.x, generated, axis=0)
        deformed, _ = deformation.apply(
            {"params": params["deformation"]}, probes, draw_gallery(params, support, key)
        )
        return Split(
            x=jnp.concatenate([support.x, deformed]),
            y=jnp.concatenate([support.y, jnp.repeat(support.y, generated)]),
        )

    def init(key, episode: Episode):
        embed_key, deform_key = jax.random.split(key)
        x = episode.support.x
        return {
            "embedding": model.init(embed_key, x),
            "deformation": deformation.init(deform_key, x, x)["params"],
        }

    def predict(params, support: Split, query_x, key=None):
        n_support = support.x.shape[0]
        augmented = augment(params, support, key)
        n_augmented = augmented.x.shape[0]
        embedded = model.apply(params["embedding"], jnp.concatenate([augmented.x, query_x]))
        centres, present = prototypes(embedded[:n_augmented], augmented.y, n_support)
        logits = -pairwise_distance(embedded[n_augmented:], centres, "squared_euclidean")
        return jnp.where(present[None, :], logits, -jnp.inf)

    def loss(params, episode: Episode, key=None):
        logits = predict(params, episode.support, episode.query.x, key)
        return classification_loss(logits, episode.query.y)

    # Random: the gallery images of the deformations are drawn with the key.
    learner = Learner(init=init, loss=loss, predict=predict)
    return checked(learner, key="required", extra=check_images)
