"""Data parallelism over the task axis: one mesh axis, parameters replicated.

A meta-batch is a stack of independent tasks, so the natural split is by task:
each device samples, adapts and differentiates its own slice of the tasks, and the
meta-gradient is the mean over all of them (one all-reduce). This is expressed with
``jax.sharding`` only: a 1-D :class:`~jax.sharding.Mesh` whose axis is named
``"tasks"``, ``NamedSharding(mesh, P())`` for the replicated state and
``NamedSharding(mesh, P("tasks"))`` for per-task values. The same jitted step runs
on one CPU, eight GPUs, a TPU slice or several hosts; XLA's partitioner inserts
the collectives.

Several hosts: call :func:`initialize` (``jax.distributed.initialize``) first on
every host, with the same program and seed. The mesh then spans every host's
devices. Task keys are split from one replicated key and laid out along the task
axis, so each host draws exactly the tasks whose keys live on its devices: a
host-specific slice of keys, no two hosts drawing the same task, and the same
tasks as a one-device run with the same seed (which is what makes a sharded run
reproduce a single-device one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from metajax.core.validation import check_int

TASKS = "tasks"


def task_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"tasks"`` over ``devices``.

    Args:
      devices: ``None`` for every device of every host (``jax.devices()``), an
        integer n for the first n of them, or an explicit list of devices.

    Example:
      >>> mesh = task_mesh(1)
      >>> mesh.axis_names, mesh.size
      (('tasks',), 1)
    """
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, int | np.integer) and not isinstance(devices, bool):
        check_int("devices", devices, 1, len(available), why=" (the devices JAX sees)")
        chosen = available[: int(devices)]
    else:
        chosen = list(devices)
        if not chosen:
            raise ValueError("devices must name at least one device, got an empty list")
    return Mesh(np.asarray(chosen), (TASKS,))


def check_mesh(mesh) -> None:
    """Raises a ``ValueError`` unless ``mesh`` is a mesh with a ``"tasks"`` axis.

    Example:
      >>> check_mesh(task_mesh(1))
      >>> check_mesh("tasks")
      Traceback (most recent call last):
      ...
      ValueError: mesh must be a jax.sharding.Mesh with a 'tasks' axis, e.g. task_mesh(), got str
    """
    if not isinstance(mesh, Mesh) or TASKS not in mesh.axis_names:
        raise ValueError(
            f"mesh must be a jax.sharding.Mesh with a {TASKS!r} axis, e.g. task_mesh(), "
            f"got {type(mesh).__name__}"
        )


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of values every device holds whole (parameters, optimizer state, keys).

    Example:
      >>> tuple(replicated(task_mesh(1)).spec)
      ()
    """
    return NamedSharding(mesh, P())


def task_sharded(mesh: Mesh) -> NamedSharding:
    """The sharding of per-task values: the leading (task) axis split across the mesh.

    Example:
      >>> tuple(task_sharded(task_mesh(1)).spec)
      ('tasks',)
    """
    return NamedSharding(mesh, P(TASKS))


def check_tasks(tasks: int, mesh: Mesh, name: str = "tasks") -> None:
    """Raises a ``ValueError`` unless ``tasks`` splits evenly across the mesh's devices.

    Example:
      >>> check_tasks(8, task_mesh(1))  # one device takes any number of tasks
    """
    if tasks % mesh.size:
        raise ValueError(
            f"{name}={tasks} must be a multiple of the {mesh.size} devices of the mesh, so "
            f"that every device gets the same number of tasks; use {name} = "
            f"{-(-tasks // mesh.size) * mesh.size} or fewer devices"
        )


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf of ``tree`` whole on every device of ``mesh``.

    Works across hosts: each host provides its own (identical) copy, as a
    multi-controller program does. Typed PRNG keys keep their type.

    Example:
      >>> import jax.numpy as jnp
      >>> x = replicate({"w": jnp.ones(3)}, task_mesh(1))
      >>> x["w"].sharding.is_fully_replicated
      True
    """
    check_mesh(mesh)
    sharding = replicated(mesh)

    def place(leaf):
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            impl = jax.random.key_impl(leaf)
            return jax.random.wrap_key_data(place(jax.random.key_data(leaf)), impl=impl)
        if jax.process_count() == 1:
            return jax.device_put(leaf, sharding)
        # device_put cannot address other hosts' devices; each host fills its own.
        host = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins a multi-host run (``jax.distributed.initialize``); call once per host, first.

    With no arguments JAX detects the cluster (SLURM, Open MPI, TPU pods, GKE);
    otherwise give all three: the coordinator's ``host:port``, the number of
    processes and this process's index. Afterwards ``jax.devices()`` lists every
    host's devices and :func:`task_mesh` spans them.

    Example (on each of two hosts, with its own ``process_id``):
      >>> initialize("10.0.0.1:1234", num_processes=2, process_id=0)  # doctest: +SKIP
      >>> mesh = task_mesh()  # both hosts' devices  # doctest: +SKIP
    """
    given = [v is not None for v in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError(
            "coordinator_address, num_processes and process_id go together: give all three "
            "or none (to detect the cluster)"
        )
    if num_processes is not None:
        check_int("num_processes", num_processes, 1)
        check_int("process_id", process_id, 0, num_processes - 1)
        if ":" not in coordinator_address:
            raise ValueError(f"coordinator_address must be host:port, got {coordinator_address!r}")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )
