"""Saved state: parameter files and training-run checkpoints, both written atomically.

A crash mid-write never replaces a good file: parameters go through a temporary file
and a rename; run checkpoints are orbax step folders, finalised by a rename.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import jax
from flax import serialization

from metajax.core.io import write_atomic


def save_params(path: str | os.PathLike, params: Any) -> Path:
    """Writes ``params`` (any pytree of arrays) as msgpack via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, serialization.to_bytes(params))


def load_params(path: str | os.PathLike, template: Any) -> Any:
    """Reads parameters saved by :func:`save_params` into the structure of ``template``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no parameter file at {path}")
    try:
        return serialization.from_bytes(template, path.read_bytes())
    except Exception as err:
        raise ValueError(f"{path} does not hold parameters of this model: {err}") from err


# Training-run checkpoints (orbax): the whole TrainState plus the run's log, so that a
# resumed run continues bit for bit. Orbax writes each step into a temporary folder
# and renames it when complete, so a write cut short (SIGKILL, full disk) is never
# listed as a checkpoint; a finished one that later fails to read is skipped in favour
# of the one before it.


def checkpoint_manager(
    directory: str | os.PathLike,
    *,
    keep: int = 3,
    best_metric: str | None = None,
    best_mode: str = "max",
):
    """An orbax ``CheckpointManager`` keeping the last ``keep`` steps and the best one.

    Args:
      directory: where the step folders go (created if missing).
      keep: how many of the most recent checkpoints to keep.
      best_metric: a validation metric (e.g. ``"val_accuracy"``); the checkpoint with
        its best value is kept as well, whatever its age. ``None`` keeps only the latest.
      best_mode: ``"max"`` or ``"min"``: whether a larger value of ``best_metric`` is better.

    Example:
      >>> import tempfile, jax.numpy as jnp
      >>> manager = checkpoint_manager(tempfile.mkdtemp(), keep=2)
      >>> for step in (10, 20, 30):
      ...     save_state(manager, step, {"w": jnp.full(2, step)}, {"note": "demo"})
      >>> manager.wait_until_finished()
      >>> manager.all_steps()
      [20, 30]
      >>> manager.close()
    """
    import orbax.checkpoint as ocp
    from orbax.checkpoint import checkpoint_managers as policies

    from metajax.core.validation import check_int

    check_int("keep", keep, 1)
    if best_mode not in ("max", "min"):
        raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
    keeping = [policies.LatestN(keep)]
    if best_metric is not None:
        sign = 1.0 if best_mode == "max" else -1.0
        keeping.append(
            policies.BestN(
                get_metric_fn=lambda metrics: sign * metrics[best_metric],
                n=1,
                keep_checkpoints_without_metrics=False,
            )
        )
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy(keeping),
        cleanup_tmp_directories=True,
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def _check_manager(manager) -> None:
    if not all(callable(getattr(manager, f, None)) for f in ("save", "restore", "all_steps")):
        raise ValueError(
            "manager must be an orbax CheckpointManager, e.g. from checkpoint_manager(folder), "
            f"got {type(manager).__name__}"
        )


def _storable(state):
    # Typed PRNG keys are not arrays orbax can write; their raw data is.
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, state)


def _is_key(leaf) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def save_state(manager, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
    """Writes ``state`` (any pytree, typed keys included) and the JSON ``meta`` at ``step``.

    ``metrics`` ranks the checkpoint for ``best_metric``; pass it only when it holds
    that metric. The write is asynchronous; ``manager.wait_until_finished()`` waits.

    Example:
      >>> import tempfile, jax
      >>> manager = checkpoint_manager(tempfile.mkdtemp())
      >>> save_state(manager, 1, {"key": jax.random.key(0)}, {"history": []})
      >>> manager.wait_until_finished(); manager.close()
    """
    import orbax.checkpoint as ocp

    from metajax.core.validation import check_int

    _check_manager(manager)
    check_int("step", step, 0)
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_storable(state)), meta=ocp.args.JsonSave(meta)
        ),
        metrics=metrics,
    )


def restore_state(manager, template: Any, step: int | None = None) -> tuple[Any, dict, int]:
    """Reads the newest readable checkpoint (or ``step``) into the structure of ``template``.

    The arrays come back with ``template``'s shardings. A checkpoint that fails to
    read (damaged after it was written) is reported and skipped for the one before.

    Returns:
      ``(state, meta, step)``.

    Example:
      >>> import tempfile, jax, jax.numpy as jnp
      >>> manager = checkpoint_manager(tempfile.mkdtemp())
      >>> state = {"w": jnp.arange(3.0), "key": jax.random.key(7)}
      >>> save_state(manager, 5, state, {"note": "x"})
      >>> manager.wait_until_finished()
      >>> back, meta, step = restore_state(manager, state)
      >>> back["w"].tolist(), meta, step
      ([0.0, 1.0, 2.0], {'note': 'x'}, 5)
      >>> manager.close()
    """
    import orbax.checkpoint as ocp

    _check_manager(manager)
    steps = sorted(manager.all_steps(), reverse=True) if step is None else [step]
    if not steps:
        raise ValueError(f"no checkpoint to resume from in {manager.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _storable(template))
    errors = []
    for candidate in steps:
        try:
            restored = manager.restore(
                candidate,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is skipped
            errors.append(f"step {candidate}: {type(err).__name__}: {err}")
            warnings.warn(
                f"checkpoint {candidate} in {manager.directory} is unreadable, trying the "
                f"previous one ({type(err).__name__}: {str(err)[:200]})",
                stacklevel=2,
            )
            continue
        # Orbax gives NamedTuples (optimizer states) back as tuples: rebuild the template's.
        leaves = jax.tree.leaves(restored.state)
        stored = jax.tree.unflatten(jax.tree.structure(_storable(template)), leaves)
        state = jax.tree.map(
            lambda new, old: (
                jax.random.wrap_key_data(new, impl=jax.random.key_impl(old))
                if _is_key(old)
                else new
            ),
            stored,
            template,
        )
        return state, restored.meta, candidate
    raise ValueError(f"no readable checkpoint in {manager.directory}: " + "; ".join(errors))
