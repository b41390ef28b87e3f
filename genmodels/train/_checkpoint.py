"""Atomic training checkpoints with orbax-checkpoint, verified on restore.

A checkpoint of step ``s`` is the folder ``checkpoints/<s>/`` holding

* ``arrays``: every leaf of the training state (parameters, EMA, optimiser state, step, PRNG key data; and
  the best parameters when early stopping is on), saved as a flat dict ``{"00000": leaf, ...}`` in
  ``jax.tree.leaves`` order, so any pytree (nnx ``State``, optax named tuples) round-trips;
* ``meta``: JSON with the step, the number, paths, shapes and dtypes of the leaves, a sha256 digest of
  their bytes, and the caller's own fields (early-stopping state, the run's fingerprint).

orbax writes each checkpoint into a temporary folder and renames it when complete, so a process killed
mid-save leaves the previous checkpoints intact (the unfinished folder is ignored and cleaned up); a Ctrl-C
during a save is held until the save is complete. Restore checks the structure against the state the caller
expects (naming the first array whose shape or dtype differs) and recomputes the digest: any mismatch,
missing file or unreadable array raises :class:`~genmodels.errors.CheckpointError` naming the folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jax
import numpy as np

from genmodels.errors import CheckpointError
from genmodels.train._files import deferred_sigint


def _ocp():
    import orbax.checkpoint as ocp  # imported on first use: it is slow to import and only needed with a run_dir

    return ocp


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def host_array(x) -> np.ndarray:
    """A numpy copy of a (replicated) array, also when it spans several processes."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)  # replicated state: every process holds the whole array
    return np.asarray(x)


def leaf_paths(tree: Any) -> list[str]:
    """``jax.tree_util.keystr`` of every leaf of ``tree``, in ``jax.tree.leaves`` order."""
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _mismatch(info: dict, paths: list[str], shapes: list, dtypes: list) -> str:
    """Which array of a checkpoint does not fit: the first differing path, shape or dtype."""
    stored = info.get("paths") or [f"#{i}" for i in range(info["num_leaves"])]
    for i, path in enumerate(paths):
        if i >= len(stored):
            return f"this run has more arrays ({len(paths)}) than the checkpoint ({info['num_leaves']}), from {path}"
        if stored[i] != path and info.get("paths"):
            return f"array {i} is {stored[i]} in the checkpoint but {path} here"
        if info["shapes"][i] != shapes[i] or info["dtypes"][i] != dtypes[i]:
            return (f"array {path} is {tuple(info['shapes'][i])} {info['dtypes'][i]} in the checkpoint but "
                    f"{tuple(shapes[i])} {dtypes[i]} here")  # fmt: skip
    return (
        f"the checkpoint has more arrays ({info['num_leaves']}) than this run ({len(paths)}), from {stored[len(paths)]}"
    )


def leaves_digest(leaves: list) -> str:
    """sha256 over (dtype, shape, bytes) of each leaf, in order; PRNG keys are hashed by their key data."""
    h = hashlib.sha256()
    for x in leaves:
        a = host_array(jax.random.key_data(x) if _is_key(x) else x)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class Checkpointer:
    """Save and restore flat training-state checkpoints under ``directory`` (see the module docstring).

    Args:
        directory: the checkpoint folder (created on first save).
        keep: how many recent checkpoints to keep (None: all).
    """

    def __init__(self, directory: str | Path, keep: int | None = 3):
        self.directory = Path(directory).absolute()
        ocp = _ocp()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False, cleanup_tmp_directories=True
        )
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        except Exception as err:  # noqa: BLE001 - orbax raises many kinds
            raise CheckpointError(f"cannot open checkpoint folder {self.directory}: {err}") from err

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, tree: Any, meta: dict | None = None) -> None:
        """Write checkpoint ``step`` (synchronously) holding the leaves of ``tree`` and JSON ``meta``."""
        leaves = jax.tree.leaves(tree)
        stored = {f"{i:05d}": (jax.random.key_data(x) if _is_key(x) else x) for i, x in enumerate(leaves)}
        info = {
            "step": int(step),
            "num_leaves": len(leaves),
            "paths": leaf_paths(tree),
            "shapes": [list(np.shape(x)) for x in stored.values()],
            "dtypes": [
                str(x.dtype if isinstance(x, (jax.Array, np.ndarray)) else np.asarray(x).dtype) for x in stored.values()
            ],
            "digest": leaves_digest(leaves),
            "user": meta or {},
        }
        ocp = _ocp()
        args = ocp.args.Composite(arrays=ocp.args.StandardSave(stored), meta=ocp.args.JsonSave(info))
        with deferred_sigint():  # a Ctrl-C waits until the checkpoint is complete
            self._manager.save(int(step), args=args, force=True)
            self._manager.wait_until_finished()

    def _info(self, step: int) -> dict:
        where = self.directory / str(step)
        ocp = _ocp()
        try:
            info = self._manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as err:  # noqa: BLE001
            raise CheckpointError(f"checkpoint {where} is unreadable (its metadata cannot be loaded: "
                                  f"{type(err).__name__}: {err}).") from err  # fmt: skip
        if not isinstance(info, dict) or "num_leaves" not in info:
            raise CheckpointError(f"checkpoint {where} has no valid metadata; it was not written by gm.train.")
        return info

    def read_meta(self, step: int) -> dict:
        """The caller's ``meta`` of checkpoint ``step`` (without reading its arrays)."""
        return self._info(step)["user"]

    def restore(self, step: int, like: Any, sharding: jax.sharding.Sharding | None = None) -> tuple[Any, dict]:
        """Read checkpoint ``step`` into the structure of ``like`` (a pytree of arrays); returns (tree, meta).

        Arrays are placed with ``sharding`` (default: the first local device).
        """
        where = self.directory / str(step)
        ocp = _ocp()
        like_leaves, treedef = jax.tree.flatten(like)
        info = self._info(step)
        expected = [jax.random.key_data(x) if _is_key(x) else x for x in like_leaves]
        shapes = [list(np.shape(x)) for x in expected]
        dtypes = [str(x.dtype) for x in expected]
        paths = leaf_paths(like)
        if (info["num_leaves"] != len(expected) or info["shapes"] != shapes or info["dtypes"] != dtypes
                or info.get("paths", paths) != paths):  # fmt: skip
            raise CheckpointError(
                f"checkpoint {where} does not match this run: {_mismatch(info, paths, shapes, dtypes)}. Resume "
                "with the same model, optimiser, EMA and validation settings, or use a new run directory."
            )
        sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = {
            f"{i:05d}": jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding) for i, x in enumerate(expected)
        }
        try:
            got = self._manager.restore(int(step), args=ocp.args.Composite(arrays=ocp.args.StandardRestore(abstract)))
            arrays = got["arrays"]
        except Exception as err:  # noqa: BLE001
            raise CheckpointError(f"checkpoint {where} is corrupt or unreadable ({type(err).__name__}: {err}). "
                                  "Delete that folder to resume from an earlier checkpoint.") from err  # fmt: skip
        leaves = []
        for i, ref in enumerate(like_leaves):
            a = arrays[f"{i:05d}"]
            leaves.append(jax.random.wrap_key_data(a, impl=jax.random.key_impl(ref)) if _is_key(ref) else a)
        if leaves_digest(leaves) != info["digest"]:
            raise CheckpointError(f"checkpoint {where} is corrupt: the restored arrays do not match the digest "
                                  "written with them. Delete that folder to resume from an earlier one.")  # fmt: skip
        return jax.tree.unflatten(treedef, leaves), info["user"]

    def close(self) -> None:
        self._manager.close()
