"""Matrix-free linear algebra over parameter pytrees: distances and conjugate gradient.

Parameters are pytrees, so vectors here are pytrees too; the tree algebra is
``optax.tree_utils`` (inner products upcast to the highest precision). What it
lacks is here: the squared distance between two parameter trees, which is both
the proximal term of the inner loop and the distance Reptile reports, and the
conjugate-gradient solve of iMAML's implicit meta-gradient, which sees the matrix
only through a function ``v -> A v`` (Hessian-vector products; cf. lineax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax.tree_utils as otu

Array = jax.Array
Tree = Any


def squared_distance(a: Tree, b: Tree) -> Array:
    """``||a - b||^2`` summed over every leaf of two pytrees of the same structure.

    Example:
      >>> import jax.numpy as jnp
      >>> float(squared_distance({"w": jnp.array([3.0, 0.0])}, {"w": jnp.array([0.0, 4.0])}))
      25.0
    """
    return otu.tree_norm(otu.tree_sub(a, b), squared=True)


def conjugate_gradient(matvec: Callable[[Tree], Tree], b: Tree, *, steps: int):
    """Solves ``A x = b`` for symmetric positive definite ``A`` over pytrees.

    Runs ``steps`` iterations (a static ``int >= 1``) from ``x = 0`` as a
    ``lax.scan``, stopping early at an exact solution or where ``A`` shows
    non-positive curvature, and returns ``x`` and the relative residual
    ``||b - A x|| / ||b||``, recomputed from ``x`` rather than taken from the
    recursion so that it is honest.

    Example:
      >>> import jax.numpy as jnp
      >>> a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
      >>> x, residual = conjugate_gradient(lambda v: a @ v, jnp.array([1.0, 2.0]), steps=2)
      >>> [round(float(v), 4) for v in x], bool(residual < 1e-5)
      ([0.0909, 0.6364], True)
    """
    x = otu.tree_zeros_like(b)
    bb = otu.tree_vdot(b, b)
    tiny = jnp.finfo(jnp.result_type(bb)).tiny

    def body(carry, _):
        x, r, p, rr, stopped = carry
        ap = matvec(p)
        curvature = otu.tree_vdot(p, ap)
        # A non-positive curvature means A is not positive definite along p (a
        # non-convex inner loss): stop there rather than take an infinite step;
        # the residual then reports the unfinished solve.
        stopped = stopped | (curvature <= 0) | (rr <= tiny)
        alpha = jnp.where(stopped, 0.0, rr / jnp.where(stopped, 1.0, curvature))
        x = otu.tree_add_scale(x, alpha, p)
        r = otu.tree_add_scale(r, -alpha, ap)
        rr_new = otu.tree_vdot(r, r)
        beta = jnp.where(stopped, 0.0, rr_new / jnp.maximum(rr, tiny))
        p = otu.tree_add_scale(r, beta, p)
        return (x, r, p, rr_new, stopped), None

    init = (x, b, b, bb, jnp.zeros((), bool))
    (x, _, _, _, _), _ = jax.lax.scan(body, init, None, length=steps)
    residual = otu.tree_sub(b, matvec(x))
    relative = jnp.sqrt(otu.tree_vdot(residual, residual) / jnp.maximum(bb, tiny))
    return x, relative
