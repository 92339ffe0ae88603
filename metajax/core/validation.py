"""Argument checks shared by the public entry points: one wording for every error."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def check_int(name: str, value, low: int, high: int | None = None, why: str = "") -> None:
    """Raises a ``ValueError`` naming ``name`` unless ``value`` is an integer in ``[low, high]``.

    Booleans are refused although Python counts them as integers.

    Example:
      >>> check_int("ways", 5, 1)
      >>> check_int("ways", 0, 1)
      Traceback (most recent call last):
      ...
      ValueError: ways must be an integer >= 1, got 0
    """
    bad = not isinstance(value, int | np.integer) or isinstance(value, bool)
    if bad or value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {allowed}{why}, got {value!r}")


def _bounds(low, high, low_open: bool, high_open: bool) -> str:
    """The allowed range of a number in words: ``> 0 and finite``, ``in [0, 1]``, ``finite``."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low} and finite"
    if high is not None:
        return f"{'<' if high_open else '<='} {high} and finite"
    return "finite"


def check_float(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    why: str = "",
) -> None:
    """Raises a ``ValueError`` naming ``name`` unless ``value`` is a finite real number in range.

    ``low_open`` / ``high_open`` exclude the bound itself. Booleans, NaN and infinities
    are refused; Python and NumPy integers are accepted.

    Example:
      >>> check_float("inner_lr", 0.4, 0.0, low_open=True)
      >>> check_float("inner_lr", 0.0, 0.0, low_open=True)
      Traceback (most recent call last):
      ...
      ValueError: inner_lr must be a number > 0.0 and finite, got 0.0
    """
    real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    ok = real and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        allowed = _bounds(low, high, low_open, high_open)
        raise ValueError(f"{name} must be a number {allowed}{why}, got {value!r}")


def check_optional_int(name: str, value, low: int, high: int | None = None) -> None:
    """:func:`check_int` for an argument that may also be ``None``.

    Example:
      >>> check_optional_int("ways", None, 1)
      >>> check_optional_int("ways", 0, 1)
      Traceback (most recent call last):
      ...
      ValueError: ways must be None or an integer >= 1, got 0
    """
    if value is None:
        return
    try:
        check_int(name, value, low, high)
    except ValueError:
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be None or an integer {allowed}, got {value!r}") from None


def check_int_sequence(name: str, values, low: int = 1, *, allow_empty: bool = False) -> tuple:
    """Checks a sequence of integers ``>= low`` (layer widths, kernel sizes); returns a tuple.

    Example:
      >>> check_int_sequence("hidden", [40, 40])
      (40, 40)
      >>> check_int_sequence("hidden", (40, 0))
      Traceback (most recent call last):
      ...
      ValueError: hidden must be a non-empty sequence of integers >= 1, got (40, 0)
    """
    kind = "a sequence" if allow_empty else "a non-empty sequence"
    message = f"{name} must be {kind} of integers >= {low}, got {values!r}"
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise ValueError(message)
    values = tuple(values)
    if not values and not allow_empty:
        raise ValueError(message)
    for v in values:
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < low:
            raise ValueError(message)
    return tuple(int(v) for v in values)


def check_choice(name: str, value, choices) -> None:
    """Raises a ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``.

    Example:
      >>> check_choice("distance", "cosine", ("squared_euclidean", "cosine"))
      >>> check_choice("distance", "l1", ("squared_euclidean", "cosine"))
      Traceback (most recent call last):
      ...
      ValueError: distance must be one of ('squared_euclidean', 'cosine'), got 'l1'
    """
    choices = tuple(choices)
    if not isinstance(value, str | int | float | bool | None) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_bool(name: str, value) -> None:
    """Raises a ``ValueError`` unless ``value`` is ``True`` or ``False`` (not merely truthy).

    Example:
      >>> check_bool("first_order", "yes")
      Traceback (most recent call last):
      ...
      ValueError: first_order must be True or False, got 'yes'
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_model(name: str, model, *, optional: bool = False) -> None:
    """Raises a ``ValueError`` unless ``model`` is a :class:`~metajax.nets.backbones.Model`-like.

    Anything with callable ``init`` and ``apply`` is accepted (``Model`` itself, or a
    NamedTuple of one's own); ``None`` too when ``optional``.
    """
    if optional and model is None:
        return
    if not (callable(getattr(model, "init", None)) and callable(getattr(model, "apply", None))):
        allowed = "a Model (init, apply)" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {type(model).__name__}")


def check_optimizer(name: str, optimizer, *, optional: bool = True) -> None:
    """Raises a ``ValueError`` unless ``optimizer`` has optax's ``init`` and ``update``."""
    if optional and optimizer is None:
        return
    if not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        allowed = "an optax.GradientTransformation" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {type(optimizer).__name__}")


def _describe(x) -> str:
    shape = getattr(x, "shape", None)
    if shape is None:
        return type(x).__name__
    return f"shape {tuple(shape)}"


def check_array(name: str, x, *, rank: int | None = None, min_rank: int = 0, layout: str = ""):
    """Raises a ``ValueError`` naming ``name`` unless ``x`` is an array of the given rank.

    ``layout`` describes the expected axes in the message, e.g. ``"[n, *features]"``.
    Only the static shape is read, so the check is free under ``jit`` and ``vmap``.

    Example:
      >>> import numpy as np
      >>> check_array("support.x", np.zeros(3), min_rank=2, layout="[n, *features]")
      Traceback (most recent call last):
      ...
      ValueError: support.x must have rank >= 2 ([n, *features]), got shape (3,)
    """
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    wanted = f"rank {rank}" if rank is not None else f"rank >= {min_rank}"
    described = f" ({layout})" if layout else ""
    if shape is None or dtype is None:
        raise ValueError(f"{name} must be an array of {wanted}{described}, got {_describe(x)}")
    if (rank is not None and len(shape) != rank) or len(shape) < min_rank:
        raise ValueError(f"{name} must have {wanted}{described}, got shape {tuple(shape)}")


def check_floating(name: str, x) -> None:
    """Raises a ``ValueError`` unless the array ``x`` has a floating-point dtype."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"{name} must have a floating-point dtype (float32 or float64 inputs), got {x.dtype}"
        )


def check_key(name: str, key, *, optional: bool = False) -> None:
    """Raises a ``ValueError`` unless ``key`` is one PRNG key (``jax.random.key`` or raw ``[2]``).

    ``None`` passes when ``optional``. Dtype and shape are static, so this is jit-safe.
    """
    if optional and key is None:
        return
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    ok = (typed and shape == ()) or (dtype == np.uint32 and shape == (2,))
    if not ok:
        got = f"{dtype}{tuple(shape)}" if dtype is not None and shape is not None else repr(key)
        allowed = " (or None)" if optional else ""
        raise ValueError(f"{name} must be a PRNG key, jax.random.key(seed){allowed}, got {got}")


def check_split(
    name: str,
    split,
    *,
    labels: str = "integer",
    min_rank: int = 2,
    min_examples: int = 0,
) -> None:
    """Shape and dtype checks of one side of an episode (static, so jit-safe).

    Args:
      name: how the split is called in messages (``"support"``, ``"query"``).
      split: a :class:`~metajax.core.episodes.Split`.
      labels: ``"integer"``: ``y`` must be integer class labels ``[n]``;
        ``"any"``: those, or floating regression targets ``[n, *outputs]``.
      min_rank: the least rank of ``x`` (2 for ``[n, *features]``).
      min_examples: the least ``n``.

    Label values are never read here: under ``jit`` they are unknown.

    Example:
      >>> import numpy as np
      >>> from metajax.core.episodes import Split
      >>> check_split("support", Split(np.zeros((3, 2), np.float32), np.zeros(2, np.int32)))
      Traceback (most recent call last):
      ...
      ValueError: support.x and support.y disagree on n: 3 vs 2 (their leading sizes must match)
    """
    x, y = getattr(split, "x", None), getattr(split, "y", None)
    if x is None or y is None:
        raise ValueError(f"{name} must be a Split(x, y), got {type(split).__name__}")
    features = "[n, *features]" if min_rank >= 2 else "[n, ...]"
    check_array(f"{name}.x", x, min_rank=max(min_rank, 1), layout=features)
    check_floating(f"{name}.x", x)
    if getattr(y, "shape", None) is None or getattr(y, "dtype", None) is None:
        raise ValueError(f"{name}.y must be an array of labels or targets, got {_describe(y)}")
    integer = jnp.issubdtype(y.dtype, jnp.integer)
    if labels == "integer" and (y.ndim != 1 or not integer):
        raise ValueError(
            f"{name}.y must be integer labels of shape [n], got {y.dtype}{tuple(y.shape)}"
        )
    if integer and y.ndim != 1:
        raise ValueError(
            f"{name}.y must be integer labels of shape [n] (rank 1), got shape {tuple(y.shape)}"
        )
    if not integer and not (jnp.issubdtype(y.dtype, jnp.floating) and y.ndim >= 1):
        raise ValueError(
            f"{name}.y must be integer labels [n] or floating targets [n, *outputs], "
            f"got {y.dtype}{tuple(y.shape)}"
        )
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}.x and {name}.y disagree on n: {x.shape[0]} vs {y.shape[0]} "
            "(their leading sizes must match)"
        )
    if x.shape[0] < min_examples:
        count = "one example" if min_examples == 1 else f"{min_examples} examples"
        raise ValueError(f"{name} must hold at least {count}, got {x.shape[0]}")


def check_features(name: str, x, like: str, like_x, *, min_examples: int = 0) -> None:
    """Checks that ``x`` is ``[n, *features]`` with the features of ``like_x`` (named ``like``).

    Example:
      >>> import numpy as np
      >>> check_features("query_x", np.zeros((2, 5)), "support", np.zeros((3, 4)))
      Traceback (most recent call last):
      ...
      ValueError: query_x features (5,) differ from support's (4,): query_x must be [n, 4]
    """
    expected = tuple(like_x.shape[1:])
    layout = "[n, " + ", ".join(str(s) for s in expected) + "]"
    check_array(name, x, min_rank=1, layout=layout)
    if tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"{name} features {tuple(x.shape[1:])} differ from {like}'s {expected}: "
            f"{name} must be {layout}"
        )
    check_floating(name, x)
    if x.shape[0] < min_examples:
        count = "one example" if min_examples == 1 else f"{min_examples} examples"
        raise ValueError(f"{name} must hold at least {count}, got none")


def check_episode(
    name: str,
    episode,
    *,
    labels: str = "integer",
    min_rank: int = 2,
    min_support: int = 0,
    min_query: int = 0,
) -> None:
    """:func:`check_split` on both splits, plus agreement of their features and label kinds.

    Example:
      >>> import numpy as np
      >>> from metajax.core.episodes import Episode, Split
      >>> split = Split(np.zeros((2, 3), np.float32), np.zeros(2, np.int32))
      >>> bad = Episode(split, split._replace(x=np.zeros((2, 4), np.float32)))
      >>> check_episode("episode", bad)  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: query.x features (4,) differ from support's (3,): both splits must hold ...
    """
    support, query = episode_splits(name, episode)
    check_split("support", support, labels=labels, min_rank=min_rank, min_examples=min_support)
    check_split("query", query, labels=labels, min_rank=min_rank, min_examples=min_query)
    check_splits_agree(support, query)


def episode_splits(name: str, episode):
    """``(support, query)`` of ``episode``, or a ``ValueError`` naming ``name`` if it has none."""
    support, query = getattr(episode, "support", None), getattr(episode, "query", None)
    if support is None or query is None:
        raise ValueError(f"{name} must be an Episode(support, query), got {type(episode).__name__}")
    return support, query


def check_splits_agree(support, query) -> None:
    """Raises a ``ValueError`` unless two checked splits hold the same features and label kind."""
    if query.x.shape[1:] != support.x.shape[1:]:
        raise ValueError(
            f"query.x features {tuple(query.x.shape[1:])} differ from support's "
            f"{tuple(support.x.shape[1:])}: both splits must hold the same kind of input"
        )
    s_int, q_int = (jnp.issubdtype(s.y.dtype, jnp.integer) for s in (support, query))
    if s_int != q_int or (not s_int and query.y.shape[1:] != support.y.shape[1:]):
        raise ValueError(
            f"query.y ({query.y.dtype}{tuple(query.y.shape)}) and support.y "
            f"({support.y.dtype}{tuple(support.y.shape)}) must both be integer labels [n] "
            "or both floating targets with the same trailing shape"
        )


def concrete(x) -> np.ndarray | None:
    """``x`` as NumPy when its values are known (an eager call), ``None`` under a trace.

    Checks of label *values* use it: they run on eager calls and cost nothing under
    ``jit``, where the values are unknown.
    """
    return None if isinstance(x, jax.core.Tracer) else np.asarray(x)


def check_label_values(name: str, y, classes: int, *, what: str = "ways") -> None:
    """Raises a ``ValueError`` if concrete labels ``y`` fall outside ``0..classes-1``.

    ``what`` names the bound in the message (``ways=5``, ``n_support=10``). Under
    ``jit`` the values are unknown and nothing is checked.

    Example:
      >>> import numpy as np
      >>> check_label_values("support.y", np.array([0, 1, 3]), 3)
      Traceback (most recent call last):
      ...
      ValueError: support.y labels must lie in 0..2 (ways=3), got [0, 1, 3]
    """
    values = concrete(y)
    if values is not None and values.size and (values.min() < 0 or values.max() >= classes):
        raise ValueError(
            f"{name} labels must lie in 0..{classes - 1} ({what}={classes}), "
            f"got {sorted(set(values.tolist()))}"
        )


def check_classes(support, classes: int, *, what: str = "ways", every: bool = False) -> None:
    """A support set for ``classes`` labels: enough examples, labels in range, none empty.

    ``support`` has at least ``classes`` examples (static, so checked under ``jit``
    too); on eager calls its labels lie in ``0..classes-1`` and, with ``every``, each
    of them has an example.

    Example:
      >>> import numpy as np
      >>> from metajax.core.episodes import Split
      >>> check_classes(Split(np.zeros((3, 2)), np.array([0, 2, 2])), 3, every=True)
      Traceback (most recent call last):
      ...
      ValueError: support.y has no example of class(es) [1] (ways=3)
    """
    n = support.x.shape[0]
    if n < classes:
        raise ValueError(
            f"support has {n} examples, fewer than {what}={classes}: every class needs at "
            "least one support example"
        )
    check_label_values("support.y", support.y, classes, what=what)
    values = concrete(support.y)
    if every and values is not None:
        empty = sorted(set(range(classes)) - set(values.tolist()))
        if empty:
            raise ValueError(f"support.y has no example of class(es) {empty} ({what}={classes})")


def check_query_classes(support_y, query_y) -> None:
    """Raises a ``ValueError`` if a concrete query label has no example in ``support_y``.

    Example:
      >>> import numpy as np
      >>> check_query_classes(np.array([0, 0, 1]), np.array([0, 2]))  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: query.y has labels [2] with no example in support.y (an empty class: ...
    """
    s, q = concrete(support_y), concrete(query_y)
    if s is None or q is None:
        return
    empty = sorted(set(q.tolist()) - set(s.tolist()))
    if empty:
        raise ValueError(
            f"query.y has labels {empty} with no example in support.y (an empty class: "
            f"the support set must hold every query class; it has {sorted(set(s.tolist()))})"
        )
