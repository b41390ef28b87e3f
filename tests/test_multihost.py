"""Several hosts through ``jax.distributed``, simulated on one machine: 2 processes with 2 CPU devices each
form one 4-device mesh (gloo collectives over localhost), train with ``gm.train.fit(mesh=data_mesh())``,
checkpoint with orbax from both processes and resume. The result must match one process with 4 devices."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from flax import nnx
    import genmodels as gm

    pid, nproc, port, steps, run_dir, resume = sys.argv[1:7]
    pid, nproc, steps, resume = int(pid), int(nproc), int(steps), resume == "1"
    if nproc > 1:
        assert gm.train.init_distributed(f"localhost:{port}", nproc, pid)
    assert jax.device_count() == 4 and jax.process_count() == nproc, (jax.devices(), jax.process_count())
    x = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
    model = gm.nets.MLP(2, hidden=32, depth=2, rngs=nnx.Rngs(0))

    def loss_fn(m, b, key):
        sigma = jnp.exp(jax.random.normal(key, (b.shape[0],)))
        noisy = b + sigma[:, None] * jax.random.normal(jax.random.fold_in(key, 1), b.shape)
        return jnp.mean((m(noisy, sigma) - b) ** 2)

    res = gm.train.fit(model, gm.train.scalar_loss(loss_fn), gm.data.ArrayDataset(x, batch_size=64),
                       key=jax.random.key(3), steps=steps, optimizer=gm.train.adamw(1e-2),
                       run_dir=gm.train.RunDirectory(run_dir, resume=resume), checkpoints=gm.train.Checkpoints(every=10),
                       log=gm.train.Logging(progress=False),
                       execution=gm.train.Execution(steps_per_call=5, mesh=gm.train.data_mesh()))
    leaves = [np.asarray(v).tolist() for v in jax.tree.leaves(nnx.state(res.ema_model, nnx.Param))]
    print(json.dumps({"pid": pid, "digest": gm.train.params_digest(res.ema_model), "leaves": leaves}))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


# jax.distributed's gloo setup gives a process 30 s to see its peers' keys; on a loaded 2-core CI machine a
# starved process can miss that window (DEADLINE_EXCEEDED in the coordination service). That is the
# environment, not the code under test, so such a run is retried once from scratch.
TRANSIENT = ("DEADLINE_EXCEEDED", "Gloo context initialization failed")


def _run(script: Path, nproc: int, steps: int, run_dir: Path, resume: bool, devices_per_process: int) -> list[dict]:
    for attempt in range(2):
        outs, errors = _attempt(script, nproc, steps, run_dir, resume, devices_per_process)
        if not errors:
            return outs
        if attempt == 1 or not any(marker in e for e in errors for marker in TRANSIENT):
            raise AssertionError(errors[0][-3000:])
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)
    raise AssertionError("unreachable")


def _attempt(script, nproc, steps, run_dir, resume, devices_per_process) -> tuple[list[dict], list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}"}  # fmt: skip
    port = str(_free_port())
    # output to files, not pipes: a process blocked on a full pipe would hold the others at jax.distributed's
    # shutdown barrier
    logs = [
        (run_dir.parent / f"{run_dir.name}-{i}.out", run_dir.parent / f"{run_dir.name}-{i}.err") for i in range(nproc)
    ]
    procs = []
    for i, (out, err) in enumerate(logs):
        with open(out, "w") as fo, open(err, "w") as fe:
            cmd = [sys.executable, str(script), str(i), str(nproc), port, str(steps), str(run_dir), str(int(resume))]
            procs.append(subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fo, stderr=fe))
    outs, errors = [], []
    try:
        for p, (out, err) in zip(procs, logs, strict=False):
            try:
                p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                errors.append(f"process timed out after 300 s; stderr: {err.read_text()[-2000:]}")
                continue
            if p.returncode != 0:
                errors.append(err.read_text())
            else:
                outs.append(json.loads(out.read_text().strip().splitlines()[-1]))
    finally:
        for p in procs:
            p.kill()
    return outs, errors


def test_two_processes_match_one_process_and_resume(tmp_path):
    """2 processes x 2 devices for 20 steps (checkpoints at 10 and 20), then resumed by 2 new processes to
    30 steps, against one uninterrupted 4-device process. The mesh, program and global batch are the same;
    only the all-reduce's summation order can differ, so parameters agree to float32 rounding (observed
    ~2e-7) rather than bit for bit. Every process ends with the same (replicated) parameters."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    single = _run(script, 1, 30, tmp_path / "single", False, 4)[0]
    first = _run(script, 2, 20, tmp_path / "multi", False, 2)
    assert sorted(int(p.name) for p in (tmp_path / "multi" / "checkpoints").iterdir()) == [10, 20]
    multi = _run(script, 2, 30, tmp_path / "multi", True, 2)
    assert multi[0]["digest"] == multi[1]["digest"] and first[0]["digest"] == first[1]["digest"]
    assert first[0]["digest"] != multi[0]["digest"]  # the resumed run did train on
    rows = [json.loads(line) for line in (tmp_path / "multi" / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in rows if "event" in r][:2] == ["start", "resume"]
    assert not (tmp_path / "multi" / "run.lock").exists()  # process 0 took the run directory's lock and released it
    a = [np.asarray(v) for v in single["leaves"]]
    b = [np.asarray(v) for v in multi[0]["leaves"]]
    scale = max(float(np.abs(u).max()) for u in a)
    assert max(float(np.abs(u - v).max()) for u, v in zip(a, b, strict=False)) < 1e-5 * max(1.0, scale)


@pytest.mark.parametrize("bad", [{"num_processes": 1}, {}])
def test_init_distributed_is_a_no_op_on_one_process(bad, monkeypatch):
    import genmodels as gm

    monkeypatch.delenv("JAX_NUM_PROCESSES", raising=False)
    monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
    assert gm.train.init_distributed(**bad) is False
