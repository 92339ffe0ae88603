"""Argument checks shared by the public entry points: one wording for every error."""

from __future__ import annotations

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
