"""Multi-host setup and the data-parallel mesh.

Data parallelism in :func:`genmodels.train.fit` is plain SPMD: pass ``mesh=data_mesh()`` and the compiled
step shards each batch over the mesh axis ``"data"`` while parameters, EMA and optimiser state are
replicated; XLA inserts the all-reduce of the gradients. The same program runs on several hosts:

1. start one process per host with the same script, the same seed and the same data files;
2. call :func:`init_distributed` first (it runs ``jax.distributed.initialize``; on one process it does
   nothing), then build the mesh over ``jax.devices()`` (all hosts' devices) with :func:`data_mesh`;
3. every process computes the same global batch index set from ``(key, step)``; each device keeps only its
   rows, so no host ships data to another. Checkpoints are written by orbax (all processes take part);
   metrics, the progress bar and ``config.json`` are written by process 0 only.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh

from genmodels.errors import ArgumentError


def init_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **kwargs,
) -> bool:
    """Initialise multi-host JAX when several processes are configured; a no-op on a single process.

    Several processes are assumed when ``num_processes > 1`` is given or found in the environment
    (``JAX_NUM_PROCESSES``), or a cluster environment JAX recognises (SLURM, Open MPI, Cloud TPU) is
    detected by ``jax.distributed.initialize`` when ``JAX_COORDINATOR_ADDRESS`` is set. Returns True when
    ``jax.distributed.initialize`` was called. Must run before any other JAX computation.
    """
    env_n = os.environ.get("JAX_NUM_PROCESSES")
    n = num_processes if num_processes is not None else (int(env_n) if env_n else None)
    address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if (n is None or n <= 1) and address is None:
        return False
    if n is not None and n <= 1:
        return False
    jax.distributed.initialize(coordinator_address=address, num_processes=n, process_id=process_id, **kwargs)
    return True


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ArgumentError("data_mesh needs at least one device.")
    return Mesh(np.asarray(devices), ("data",))


def broadcast_from_first(payload: bytes, size: int = 4096) -> bytes:
    """Process 0's ``payload`` (at most ``size - 4`` bytes) on every process; a collective every process calls.

    Used to tell the other processes of a job what process 0 decided (e.g. that it took a run directory's
    lock, and the job id it wrote there) before they go on.
    """
    from jax.experimental import multihost_utils

    data = payload[: size - 4]
    buf = np.zeros(size, np.uint8)
    buf[:4] = np.frombuffer(len(data).to_bytes(4, "little"), np.uint8)
    buf[4 : 4 + len(data)] = np.frombuffer(data, np.uint8)
    out = np.asarray(multihost_utils.broadcast_one_to_all(buf)).astype(np.uint8)
    n = int.from_bytes(out[:4].tobytes(), "little")
    return out[4 : 4 + n].tobytes()
