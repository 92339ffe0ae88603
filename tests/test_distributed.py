"""Sharding over tasks: four forced host devices against one, in a fresh process.

XLA reads ``--xla_force_host_platform_device_count`` once, when the backend starts,
so the multi-device checks run in a subprocess; this process stays on one device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import pytest

from metajax.training.distributed import check_tasks, initialize, replicate, task_mesh


def run_on_forced_devices(code: str, devices: int = 4) -> dict:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = {**os.environ, "XLA_FLAGS": flags.strip()}
    env.pop("JAX_PLATFORMS", None)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


SHARDED_STEP = """
import json, re
import jax, numpy as np, optax
from metajax import init_state, make_train_step, maml, mlp, pool_sampler, protonet
from metajax.datasets import load_digits
from metajax.training.distributed import replicate, task_mesh

assert jax.device_count() == 4, jax.devices()
pool = load_digits().pool("train")  # [5 classes, 174, 8, 8, 1]
sampler = pool_sampler(pool, ways=3, shots=5, queries=7)
# A ProtoNet's loss does not change when every embedding shifts alike, so the gradient of an
# always-active last-layer unit's bias is zero up to rounding; Adam divides by the gradient's
# size and would turn that rounding, which depends on the reduction order, into whole steps.
# SGD with momentum keeps rounding as small as it is.
SGD = optax.sgd(0.1, momentum=0.9)
# The sharding is of the task axis, whatever the backbone: an MLP on the flattened images
# compiles several times faster than a convolutional one (second order for MAML).
learners = {
    "protonet": (protonet(mlp(hidden=(32,))), SGD),
    "maml": (maml(mlp(hidden=(32,), outputs=3), inner_steps=2), optax.adam(1e-3)),
}
out = {}
for name, (learner, opt) in learners.items():
    params, split, flops = {}, {}, {}
    for devices in (1, 4):
        mesh = task_mesh(devices)
        state = replicate(init_state(learner, opt, sampler, jax.random.key(0)), mesh)
        data = replicate(sampler.data, mesh)
        # All tasks at once (the accelerators' task_chunk), so that the split shows in
        # the program; SHARDED_RUN trains with the CPU's default of one task at a time.
        step = make_train_step(learner, opt, sampler, tasks=8, task_chunk=None, mesh=mesh)
        compiled = step.lower(state, data).compile()
        hlo = compiled.as_text()
        # The sampled support images of the meta-batch, [tasks, ways*shots, 8, 8, 1] (or
        # flattened for the MLP, [..., 64]), as one device's program holds them.
        shape = r"f32\\[(\\d+),15,(?:8,8,1|64)\\]"
        split[devices] = {
            "per_device": sorted({int(m) for m in re.findall(shape, hlo)}),
            "all_reduce": "all-reduce" in hlo,
        }
        flops[devices] = compiled.cost_analysis()["flops"]
        for _ in range(3):  # the program just compiled, not a second compile of step
            state, metrics = compiled(state, data)
        leaves = jax.tree.leaves(state.params)
        out.setdefault(name, {})[f"sharding_{devices}"] = str(leaves[0].sharding.spec)
        out[name][f"devices_{devices}"] = len(leaves[0].sharding.device_set)
        params[devices] = [np.asarray(a) for a in jax.device_get(leaves)]
    out[name]["split"] = split
    out[name]["flops_ratio"] = flops[4] / flops[1]
    out[name]["max_abs_diff"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(params[1], params[4])
    )
    out[name]["max_abs"] = max(float(np.max(np.abs(a))) for a in params[1])
results["step"] = out
"""


@pytest.fixture(scope="module")
def forced_devices():
    """The results of SHARDED_STEP and SHARDED_RUN (below), run in one process: JAX, the
    data and the forced devices start once."""
    return run_on_forced_devices(f"results = {{}}\n{SHARDED_STEP}{SHARDED_RUN}"
                                 "print(json.dumps(results))")  # fmt: skip


@pytest.fixture(scope="module")
def sharded_step(forced_devices):
    return forced_devices["step"]


@pytest.mark.parametrize("name", ["protonet", "maml"])
def test_sharded_meta_step_equals_single_device(sharded_step, name):
    result = sharded_step[name]
    # Same tasks (same key splits), same mean gradient; only the reduction order differs.
    assert result["max_abs_diff"] <= 1e-5 * max(1.0, result["max_abs"])
    assert result["devices_4"] == 4 and result["sharding_4"] in ("P()", "PartitionSpec()")


@pytest.mark.parametrize("name", ["protonet", "maml"])
def test_task_axis_is_split_across_the_four_devices(sharded_step, name):
    split = sharded_step[name]["split"]
    # One device's program holds the support images of all 8 tasks; each of four
    # devices' programs holds those of 2, and all-reduces the meta-gradient.
    assert split["1"]["per_device"] == [8] and not split["1"]["all_reduce"]
    assert split["4"]["per_device"] == [2] and split["4"]["all_reduce"]
    # And each device does well under the whole arithmetic: not exactly a quarter, as
    # the replicated optimizer update is not split (measured with these MLPs: 0.254
    # ProtoNet, 0.256 MAML; 0.25 and 0.51 with a two-block Conv-4).
    assert sharded_step[name]["flops_ratio"] < 0.75


SHARDED_RUN = """
import json, tempfile
import jax, numpy as np, optax
from metajax import meta_train, mlp, pool_sampler, protonet
from metajax.datasets import load_digits
from metajax.training.distributed import task_mesh

pool = load_digits().pool("train")
train = pool_sampler(pool[:4], ways=2, shots=3, queries=5)
val = pool_sampler(pool[4:], ways=1, shots=3, queries=5)
learner = protonet(mlp(hidden=(16,)))
sgd = optax.sgd(0.1, momentum=0.9)  # not Adam: see SHARDED_STEP
common = dict(steps=30, key=jax.random.key(7), tasks=4, log_every=10, progress=False,
              validation=(val, 10), validation_episodes=8)
single, history_1 = meta_train(learner, train, sgd, mesh=task_mesh(1), **common)
folder = tempfile.mkdtemp()
# Four devices, stopped after 20 steps and resumed from the checkpoint to 30.
meta_train(learner, train, sgd, mesh=task_mesh(4), checkpoint_dir=folder,
           checkpoint_every=10, **{**common, "steps": 20})
sharded, history_4 = meta_train(learner, train, sgd, mesh=task_mesh(4),
                                checkpoint_dir=folder, resume=True, **common)
diff = max(float(np.max(np.abs(a - b))) for a, b in
           zip(jax.tree.leaves(jax.device_get(single.params)),
               jax.tree.leaves(jax.device_get(sharded.params))))
drop = lambda h: [{k: v for k, v in r.items() if k != "wall_s"} for r in h]
results["run"] = {"diff": diff, "history_1": drop(history_1), "history_4": drop(history_4)}
"""


def test_sharded_meta_train_with_resume_follows_the_single_device_run(forced_devices):
    result = forced_devices["run"]
    assert result["diff"] < 1e-5
    assert [r["step"] for r in result["history_4"]] == [10, 20, 30]
    for a, b in zip(result["history_1"], result["history_4"], strict=True):
        assert a.keys() == b.keys() and "val_accuracy" in a
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k


MULTI_HOST_WORKER = """
import json, os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import jax, numpy as np, optax
from metajax import init_state, make_train_step, mlp, pool_sampler, protonet
from metajax.training.distributed import initialize, replicate, task_mesh

initialize(f"localhost:{sys.argv[2]}", num_processes=2, process_id=int(sys.argv[1]))
pool = np.random.default_rng(0).normal(size=(12, 20, 7)).astype(np.float32)
sampler = pool_sampler(pool, ways=3, shots=5, queries=4)
learner, opt = protonet(mlp(hidden=(16,))), optax.adam(1e-2)
mesh = task_mesh()
state = replicate(init_state(learner, opt, sampler, jax.random.key(0)), mesh)
data = replicate(sampler.data, mesh)
step = make_train_step(learner, opt, sampler, tasks=8, mesh=mesh)
for _ in range(3):
    state, metrics = step(state, data)
print(json.dumps({
    "devices": jax.device_count(),
    "local_devices": jax.local_device_count(),
    "params": [np.asarray(a.addressable_data(0)).tolist() for a in jax.tree.leaves(state.params)],
}))
"""


def test_two_processes_of_two_devices_equal_one_device(tmp_path):
    import socket

    import numpy as np
    import optax

    from metajax import init_state, make_train_step, mlp, pool_sampler, protonet

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    script = tmp_path / "worker.py"
    script.write_text(MULTI_HOST_WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
    hosts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(h["devices"] == 4 and h["local_devices"] == 2 for h in hosts)
    # The same run on this process's one device.
    pool = np.random.default_rng(0).normal(size=(12, 20, 7)).astype(np.float32)
    sampler = pool_sampler(pool, ways=3, shots=5, queries=4)
    learner, opt = protonet(mlp(hidden=(16,))), optax.adam(1e-2)
    state = init_state(learner, opt, sampler, jax.random.key(0))
    step = make_train_step(learner, opt, sampler, tasks=8)
    for _ in range(3):
        state, _ = step(state, sampler.data)
    for host in hosts:
        for mine, theirs in zip(jax.tree.leaves(state.params), host["params"], strict=True):
            np.testing.assert_allclose(np.asarray(theirs), mine, rtol=1e-5, atol=1e-6)


def test_mesh_and_tasks_are_validated():
    with pytest.raises(ValueError, match=r"devices must be an integer in \[1, 1\]"):
        task_mesh(2)
    with pytest.raises(ValueError, match="devices must name at least one device"):
        task_mesh([])
    mesh = task_mesh()
    assert mesh.axis_names == ("tasks",) and mesh.size == jax.device_count()
    check_tasks(3, mesh)
    with pytest.raises(ValueError, match=r"coordinator_address, num_processes and process_id"):
        initialize("localhost:1234")
    with pytest.raises(ValueError, match=r"process_id must be an integer in \[0, 1\]"):
        initialize("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match="coordinator_address must be host:port"):
        initialize("localhost", 2, 0)


def test_check_tasks_names_the_argument_and_a_fix():
    check_tasks(5, task_mesh(1))  # one device divides everything
    fake = type("FakeMesh", (), {"size": 4})()
    with pytest.raises(ValueError, match=r"--tasks=6 must be a multiple of the 4 devices.*8"):
        check_tasks(6, fake, name="--tasks")


def test_replicate_keeps_typed_keys():
    key = replicate(jax.random.key(3), task_mesh(1))
    assert jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    assert jax.random.key_data(key).tolist() == jax.random.key_data(jax.random.key(3)).tolist()
