"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS 2016).

A query is labelled by attention over the support set: with ``f`` embedding the
query and ``g`` the support examples, ``a(x̂, x_i)`` is a softmax over the support
of the cosine similarity ``c(f(x̂), g(x_i))`` (eq. 2), and the predicted label
distribution is ``P(y | x̂, S) = Σ_i a(x̂, x_i) onehot(y_i)`` (eq. 1). Training
minimises the query cross-entropy of that distribution end to end, on episodes
drawn like the test episodes (§2.2).

Full context embeddings (FCE, §2.1.2 and Appendix A) make both embeddings depend
on the whole support set ``S``:

* ``g(x_i, S) = h→_i + h←_i + g'(x_i)``: a bidirectional LSTM reads the sequence of
  support embeddings ``g'(x_i)`` (Appendix A.2);
* ``f(x̂, S) = attLSTM(f'(x̂), g(S), K)``: an LSTM that, for ``K`` steps, reads the
  support set by content-based attention (Appendix A.1)::

      ĥ_k, c_k = LSTM(f'(x̂), [h_{k-1}, r_{k-1}], c_{k-1})
      h_k = ĥ_k + f'(x̂)
      r_{k-1} = Σ_i softmax_i(h_{k-1}ᵀ g(x_i)) g(x_i)

  and ``f(x̂, S) = h_K``.

Paper facts used for the defaults (Omniglot, §4.1.1): ``f' = g'`` is the Conv-4 of
64 filters (3x3 conv, batch norm, ReLU, 2x2 max-pool; a 64-wide embedding for
28x28 inputs), the similarity is cosine with no temperature, and models train on
N-way k-shot episodes like the test ones ("test and train conditions must
match", §2.2). Table 1 gives 98.1 / 98.9 / 93.8 / 98.5 % for 5-way 1-/5-shot and
20-way 1-/5-shot without fine-tuning; as we read it, its Omniglot rows do not use
FCE, which the paper evaluates on miniImageNet (Table 2); we have not checked
this against the authors' code. Not stated in the paper as far as we can tell,
and so choices of ours: the optimizer (Adam at 1e-3, as in most
re-implementations), the number of read steps ``K`` (5 here), and zero initial
LSTM states (``h_0 = c_0 = 0``, so the first read is the mean of ``g(S)``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from metajax.core.distances import DISTANCES, pairwise_distance
from metajax.core.episodes import Episode, Split
from metajax.core.learner import Learner, checked
from metajax.core.losses import classification_loss
from metajax.core.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_label_values,
    check_model,
    check_query_classes,
)
from metajax.nets.backbones import Model, conv4


def _zeros_carry(x):
    # Explicit zero states in the input's dtype: the cells' default carry is float32,
    # which would change type inside the scan when the parameters are float64.
    return jnp.zeros_like(x), jnp.zeros_like(x)


class SupportContext(nn.Module):
    """``g(x_i, S) = h→_i + h←_i + g'(x_i)``: Vinyals et al. 2016, Appendix A.2.

    A bidirectional LSTM, as wide as the embedding, runs over the support
    embeddings in the order given; its two hidden states are added to the input
    (a skip connection), so an untrained context only perturbs ``g'``.
    """

    @nn.compact
    def __call__(self, g_prime):  # [n_support, d]
        width = g_prime.shape[-1]
        sequence = g_prime[None]  # nn.RNN wants [batch, time, features]
        carry = _zeros_carry(sequence[:, 0])
        # The cells are named here, where their parameters live (nn.RNN holds none).
        forward = nn.RNN(nn.OptimizedLSTMCell(width, name="forward"))
        backward = nn.RNN(
            nn.OptimizedLSTMCell(width, name="backward"), reverse=True, keep_order=True
        )
        return (
            g_prime
            + forward(sequence, initial_carry=carry)[0]
            + backward(sequence, initial_carry=carry)[0]
        )


class _ReadStep(nn.Module):
    """One step ``k`` of the attention LSTM; scanned ``K`` times by :class:`AttentionLSTM`."""

    @nn.compact
    def __call__(self, carry, f_prime, g):
        c, h = carry
        # r_{k-1}: content-based attention of h_{k-1} over g(S), a plain dot product
        # (eq. 6 of Appendix A.1), not the cosine of the classifier.
        read = jax.nn.softmax(h @ g.T, axis=-1) @ g
        # The paper's LSTM takes [h_{k-1}, r_{k-1}] as its hidden input; the gates are
        # linear in (input, hidden), so feeding r_{k-1} beside the input is the same model.
        (c, h_hat), _ = nn.OptimizedLSTMCell(f_prime.shape[-1], name="lstm")(
            (c, h), jnp.concatenate([f_prime, read], axis=-1)
        )
        return (c, h_hat + f_prime), None


class AttentionLSTM(nn.Module):
    """``f(x̂, S) = attLSTM(f'(x̂), g(S), K)``: Vinyals et al. 2016, Appendix A.1.

    Each query is processed independently (rows of ``f_prime``) for ``read_steps``
    steps with shared weights, as a ``lax.scan`` (through ``nn.scan``).

    Attributes:
      read_steps: ``K``, the number of reads of the support set.
    """

    read_steps: int = 5

    @nn.compact
    def __call__(self, f_prime, g):  # [n_query, d], [n_support, d]
        steps = nn.scan(
            _ReadStep,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=(nn.broadcast, nn.broadcast),
            length=self.read_steps,
        )
        (_, h), _ = steps(name="read")(_zeros_carry(f_prime), f_prime, g)
        return h


class FullContextEmbedding(nn.Module):
    """Both FCE embeddings: ``(g(S), f(x̂, S))`` from the plain ``(g'(S), f'(x̂))``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> fce = FullContextEmbedding(read_steps=2)
      >>> s, q = jnp.ones((5, 8)), jnp.ones((3, 8))
      >>> params = fce.init(jax.random.key(0), s, q)
      >>> [a.shape for a in fce.apply(params, s, q)]
      [(5, 8), (3, 8)]
    """

    read_steps: int = 5

    @nn.compact
    def __call__(self, support_embeddings, query_embeddings):
        g = SupportContext(name="support")(support_embeddings)
        f = AttentionLSTM(self.read_steps, name="query")(query_embeddings, g)
        return g, f


def similarity(queries, support, *, distance: str = "cosine", scale: float = 1.0):
    """``[n_query, n_support]`` attention scores: ``scale`` times minus the distance.

    For ``"cosine"`` this is ``scale * (c(q, s) - 1)``, the cosine similarity up to a
    constant that the attention softmax ignores.
    """
    return -scale * pairwise_distance(queries, support, distance)


def attention(queries, support, *, distance: str = "cosine", scale: float = 1.0):
    """``a(x̂, x_i)`` of eq. 2, ``[n_query, n_support]``: a softmax over the support of similarities.

    Example:
      >>> import jax.numpy as jnp
      >>> a = attention(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.0], [0.0, 1.0]]))
      >>> bool(jnp.allclose(a.sum(-1), 1.0))
      True
    """
    check_choice("distance", distance, DISTANCES)
    return jax.nn.softmax(similarity(queries, support, distance=distance, scale=scale), axis=-1)


def label_log_probs(scores, labels, num_labels: int):
    """``log Σ_i softmax(scores)_i [y_i = c]`` for every label ``c``, ``[n_query, num_labels]``.

    Computed per label as a log-sum-exp over that label's support examples, so a
    label whose examples all have tiny attention is a large negative number, not
    ``log 0``. Labels absent from ``labels`` are ``-inf`` with zero gradient (no
    ``log 0`` is ever differentiated).
    """
    present = jax.ops.segment_sum(jnp.ones_like(labels), labels, num_labels) > 0
    # Per-label maximum for stability; the result does not depend on it, so no
    # gradient needs to flow through it (the same trick as jax.nn.logsumexp).
    top = jax.ops.segment_max(scores.T, labels, num_labels)  # [num_labels, n_query]
    top = jax.lax.stop_gradient(jnp.where(present[:, None], top, 0.0))
    mass = jax.ops.segment_sum(jnp.exp(scores.T - top[labels]), labels, num_labels)
    log_mass = top + jnp.log(jnp.where(present[:, None], mass, 1.0))
    log_probs = log_mass.T - jax.nn.logsumexp(scores, axis=-1, keepdims=True)
    return jnp.where(present[None, :], log_probs, -jnp.inf)


def _check_labels(support: Split, query_x, query_y=None) -> None:
    """Value checks of the labels, on eager calls only (under ``jit`` the values are unknown).

    ``support.y`` lies in ``0..n_support-1`` (one column per support example) and every
    query label has a support example. ``query_x`` is unused: this is the ``extra``
    hook of :func:`metajax.core.learner.checked`.
    """
    del query_x
    check_label_values("support.y", support.y, support.x.shape[0], what="n_support")
    if query_y is not None:
        check_query_classes(support.y, query_y)


def matching_networks(
    model: Model | None = None,
    *,
    fce: bool = False,
    read_steps: int = 5,
    distance: str = "cosine",
    scale: float = 1.0,
) -> Learner:
    """Matching Networks (Vinyals et al. 2016), optionally with full context embeddings.

    Support and query are embedded in one pass of ``model`` (``f' = g'``), so its
    batch norm uses the episode's statistics, as in :func:`metajax.learners.metric.protonet`.

    ``predict`` returns the log of the attention-weighted label distribution, one
    column per possible label ``0..n_support-1`` (the number of ways is not a static
    property of the arrays); columns of labels absent from the support set are
    ``-inf``. The loss is the query cross-entropy of that distribution. Parameters
    are ``{"embedding": ...}``, plus ``"fce"`` (the two LSTMs) when ``fce=True``.

    Labels are checked on eager calls: ``support.y`` must lie in ``0..n_support-1``
    and every query label needs a support example. Under ``jit`` the values are
    unknown, and a query class absent from the support set gives an infinite loss.

    Args:
      model: the embedding network ``f' = g'``; Conv-4 with 64 filters by default
        (the paper's, §4.1.1).
      fce: add full context embeddings (§2.1.2, Appendix A).
      read_steps: ``K``, reads of the support set by the attention LSTM (FCE only;
        the paper does not state its value).
      distance: ``"cosine"`` (the paper's, eq. 2) or ``"squared_euclidean"``.
      scale: multiplies the similarities inside the softmax; 1.0 is the paper's
        plain cosine. A larger value sharpens the attention.

    Example:
      >>> import jax
      >>> from metajax.core.episodes import sample_episode
      >>> from metajax.nets.backbones import mlp
      >>> pool = jax.random.uniform(jax.random.key(0), (10, 8, 6))
      >>> episode = sample_episode(jax.random.key(1), pool, ways=3, shots=2, queries=2)
      >>> learner = matching_networks(mlp(hidden=(16,)), fce=True, read_steps=2)
      >>> params = learner.init(jax.random.key(2), episode)
      >>> loss, metrics = learner.loss(params, episode, jax.random.key(3))
      >>> learner.predict(params, episode.support, episode.query.x).shape
      (6, 6)
    """
    check_model("model", model, optional=True)
    check_bool("fce", fce)
    check_int("read_steps", read_steps, 1)
    check_choice("distance", distance, DISTANCES)
    check_float("scale", scale, 0, low_open=True)
    model = conv4() if model is None else model
    context = FullContextEmbedding(read_steps=read_steps) if fce else None

    def embed(params, support: Split, query_x, *, full_context=True):
        n_support = support.x.shape[0]
        embedded = model.apply(params["embedding"], jnp.concatenate([support.x, query_x]))
        if embedded.ndim != 2:
            raise ValueError(f"model must give flat embeddings [n, d], got shape {embedded.shape}")
        s, q = embedded[:n_support], embedded[n_support:]
        if context is not None and full_context:
            s, q = context.apply({"params": params["fce"]}, s, q)
        return s, q

    def init(key, episode: Episode):
        embed_key, context_key = jax.random.split(key)
        params = {"embedding": model.init(embed_key, episode.support.x)}
        if context is not None:
            s, q = embed(params, episode.support, episode.query.x, full_context=False)
            params["fce"] = context.init(context_key, s, q)["params"]
        return params

    def predict(params, support: Split, query_x, key=None):
        del key  # Deterministic given the episode.
        s, q = embed(params, support, query_x)
        scores = similarity(q, s, distance=distance, scale=scale)
        return label_log_probs(scores, support.y, support.x.shape[0])

    def loss(params, episode: Episode, key=None):
        log_probs = predict(params, episode.support, episode.query.x, key)
        # The rows are log-probabilities already, so the softmax inside the
        # cross-entropy is the identity and this is -log P(y | x̂, S).
        return classification_loss(log_probs, episode.query.y)

    return checked(
        Learner(init=init, loss=loss, predict=predict), min_support=1, extra=_check_labels
    )
