"""``fit``: the training loop around the compiled step (run directory, logging, checkpoints, early stopping).

The host loop only dispatches calls of one compiled program that runs ``n <= k = steps_per_call`` steps
(``n < k`` where a checkpoint, validation or the end falls inside), keeps one call in flight, and reads back
each call's per-step losses one call later, so the device never waits on logging. Calls are aligned to
multiples of ``k`` counted from step 0, so a resumed run executes the same sequence of calls as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from genmodels.data import AbstractDataset, check_batch
from genmodels.errors import NonFiniteLossError
from genmodels.train._checkpoint import Checkpointer, host_array
from genmodels.train._optim import adamw
from genmodels.train._step import TrainState, make_train_call, replicate


@dataclasses.dataclass
class FitResult:
    """Outcome of :func:`fit`. ``model`` is the input model, updated in place with the final parameters."""

    model: nnx.Module
    ema_model: nnx.Module | None  # the model with EMA parameters (None without ema_decay)
    best_model: nnx.Module | None  # the validated model at its best validation value (None without validate)
    step: int  # completed optimiser steps
    history: list[dict]  # the rows of metrics.jsonl (also without a run_dir)
    wall_time: float  # seconds in fit, compilation included
    steps_per_sec: float | None = None  # throughput after the first (compiling) call
    best_value: float | None = None
    stopped_early: bool = False


def params_digest(model: nnx.Module | Any) -> str:
    """sha256 (hex) of the parameters: each ``nnx.Param`` leaf's path, dtype, shape and bytes, in path order.

    Accepts an ``nnx.Module`` (its ``nnx.Param`` state) or any pytree of arrays.
    """
    tree = nnx.state(model, nnx.Param) if isinstance(model, nnx.Module) else model
    h = hashlib.sha256()
    for path, leaf in sorted(jax.tree_util.tree_leaves_with_path(tree), key=lambda kv: jax.tree_util.keystr(kv[0])):
        a = host_array(leaf)
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _check_int(name, value, minimum, *, optional=False):
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{' or None' if optional else ''}, got {value!r}.")


def _as_key(key):
    if not isinstance(key, jax.Array):
        raise TypeError(f"key must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}.")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got a batch of shape {key.shape}.")
        return key
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise ValueError(f"key must be jax.random.key(seed) or a raw uint32 key of shape (2,), got {key.dtype}{key.shape}.")
    return jax.random.wrap_key_data(key)


class _RunDir:
    """config.json, metrics.jsonl and checkpoints/ of one run; refuses to clobber an existing run."""

    def __init__(self, path, *, resume: bool, config: dict | None, keep: int | None, writer: bool):
        self.path, self.writer = Path(path), writer
        self.metrics_path = self.path / "metrics.jsonl"
        existed = self.metrics_path.exists() or (self.path / "checkpoints").exists()
        if existed and not resume:
            raise FileExistsError(f"run_dir {self.path} already holds a run (metrics.jsonl or checkpoints/); "
                                  "pass resume=True to continue it, or choose a new run_dir.")  # fmt: skip
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)
            if self.metrics_path.exists() and not self.metrics_path.read_bytes().endswith(b"\n"):
                with open(self.metrics_path, "a") as f:  # a line cut by a killed process stays on its own
                    f.write("\n")
        if config is not None:
            text = json.dumps(config, indent=2, sort_keys=True, default=str)
            cfg = self.path / "config.json"
            if cfg.exists() and cfg.read_text() != text:
                raise ValueError(f"config differs from {cfg} of the run being resumed; use a new run_dir.")
            if writer and not cfg.exists():
                tmp = cfg.with_suffix(".json.tmp")
                tmp.write_text(text)
                os.replace(tmp, cfg)
        self.checkpoints = Checkpointer(self.path / "checkpoints", keep=keep)

    def previous_rows(self, upto: int) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if isinstance(row, dict) and row.get("step", math.inf) <= upto:
                rows.append(row)
        return rows

    def write(self, row: dict) -> None:
        if self.writer:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")


def fit(
    model: nnx.Module,
    loss_fn: Callable,
    dataset: AbstractDataset,
    *,
    key: jax.Array,
    steps: int,
    optimizer: optax.GradientTransformation | None = None,
    ema_decay: float | None = 0.999,
    ema_warmup: bool = True,
    run_dir: str | Path | None = None,
    config: dict | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int | None = 3,
    resume: bool = False,
    log_every: int = 100,
    progress: bool = True,
    validate: Callable[[nnx.Module], float] | None = None,
    validate_every: int = 1000,
    patience: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    compute_dtype: Any = None,
    steps_per_call: int = 1,
    donate: bool = True,
) -> FitResult:
    """Train ``model`` for ``steps`` optimiser steps on ``dataset``; see ``notes/TRAINER_CONTRACT.md``.

    ``loss_fn(model, batch, key)`` returns a scalar loss or ``(loss, {name: scalar})``; the batch of step
    ``s`` is ``dataset.batch(data_key, s)`` and its key ``fold_in(loss_key, s)`` with
    ``data_key, loss_key = split(key)``. With ``run_dir``: ``config.json`` (when ``config`` is given),
    ``metrics.jsonl`` (one JSON object per line: ``step``, mean ``loss`` and metrics over the last
    ``log_every`` steps, ``steps_per_sec``; validation and event rows) and ``checkpoints/<step>/`` every
    ``checkpoint_every`` steps and at the end. ``resume=True`` continues from the latest checkpoint (or
    starts afresh if there is none) and ends bit-identical to an uninterrupted run. ``validate(model)``
    (lower is better) runs every ``validate_every`` steps on the EMA model (the raw one without EMA);
    ``patience`` stops after that many validations without improvement. The model is updated in place.
    The EMA uses decay ``min(ema_decay, (1 + s) / (10 + s))`` after ``s`` updates when ``ema_warmup``
    (the default), so short runs do not average in the initial parameters; ``ema_warmup=False`` uses
    ``ema_decay`` from the first update.

    Raises:
        NonFiniteLossError (a FloatingPointError) naming the step whose loss or gradient was not finite;
        that update is discarded and nothing is written after it (earlier checkpoints stay).
    """
    t_start = time.perf_counter()
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be a flax.nnx.Module, got {type(model).__name__}.")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, batch, key).")
    key = _as_key(key)
    _check_int("steps", steps, 0)
    _check_int("checkpoint_every", checkpoint_every, 1, optional=True)
    _check_int("keep_checkpoints", keep_checkpoints, 1, optional=True)
    _check_int("log_every", log_every, 1)
    _check_int("validate_every", validate_every, 1)
    _check_int("patience", patience, 1, optional=True)
    _check_int("steps_per_call", steps_per_call, 1)
    if ema_decay is not None and not (isinstance(ema_decay, (float, int)) and 0.0 <= ema_decay < 1.0):
        raise ValueError(f"ema_decay must be a float in [0, 1) or None, got {ema_decay!r}.")
    if not isinstance(ema_warmup, bool):
        raise TypeError(f"ema_warmup must be True or False, got {ema_warmup!r}.")
    if (checkpoint_every is not None or resume or config is not None) and run_dir is None:
        raise ValueError("checkpoint_every, resume and config need a run_dir.")
    if patience is not None and validate is None:
        raise ValueError("patience (early stopping) needs a validate function.")
    if compute_dtype is not None and not jnp.issubdtype(jnp.dtype(compute_dtype), jnp.floating):
        raise TypeError(f"compute_dtype must be a floating dtype such as jnp.bfloat16, got {compute_dtype!r}.")
    optimizer = adamw(1e-3) if optimizer is None else optimizer
    data_key = jax.random.split(key)[0]
    check_batch(dataset, data_key)
    if mesh is not None:
        if "data" not in mesh.axis_names:
            raise ValueError(f"mesh must have an axis named 'data', got axes {mesh.axis_names}.")
        n_data = mesh.shape["data"]
        if dataset.batch_size % n_data:
            raise ValueError(f"batch_size={dataset.batch_size} must be divisible by the {n_data} devices of the "
                             "mesh axis 'data' (each device takes batch_size / devices rows).")  # fmt: skip
    writer = jax.process_index() == 0

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    state = TrainState(
        params=params, rest=rest, ema=params if ema_decay is not None else None,
        opt_state=optimizer.init(params), step=jnp.int32(0), bad_step=jnp.int32(-1),
        key=jax.random.key_data(key),
    )  # fmt: skip
    best = params if validate is not None else None
    best_value, best_step, bad_count, stopped = math.inf, None, 0, False
    rd = None
    if run_dir is not None:
        rd = _RunDir(run_dir, resume=resume, config=config, keep=keep_checkpoints, writer=writer)
    history: list[dict] = []
    sharding = NamedSharding(mesh, P()) if mesh is not None else None
    latest = rd.checkpoints.latest_step() if rd is not None and resume else None
    if latest is not None:
        (state, best), meta = rd.checkpoints.restore(latest, (state, best), sharding)
        best_value = math.inf if meta.get("best_value") is None else meta["best_value"]
        best_step, bad_count = meta.get("best_step"), meta.get("bad_count", 0)
        stopped = bool(meta.get("stopped_early", False))
        if not np.array_equal(host_array(state.key), np.asarray(jax.random.key_data(key))):
            warnings.warn("fit(resume=True) was given a different key than the checkpointed run; the run's own "
                          "key is used so that it continues exactly.", stacklevel=2)  # fmt: skip
        history = rd.previous_rows(latest)
        state = replicate(state, mesh)  # fresh buffers (donated below)
        best = replicate(best, mesh) if best is not None else None
    else:
        state, best = replicate(state, mesh), (replicate(best, mesh) if best is not None else None)
    start = int(host_array(state.step))

    data_arrays, data_static = eqx.partition(dataset, eqx.is_array)
    if mesh is not None:
        data_arrays = replicate(data_arrays, mesh)
    call = make_train_call(graphdef, loss_fn, data_static, optimizer, ema_decay, ema_warmup=ema_warmup, mesh=mesh,
                           compute_dtype=compute_dtype, steps_per_call=steps_per_call, donate=donate,
                           key_impl=jax.random.key_impl(key))  # fmt: skip

    bar = tqdm(total=steps, initial=min(start, steps), unit="step", disable=not (progress and writer), dynamic_ncols=True)
    window: list[tuple[float, dict]] = []
    clock = {"t": time.perf_counter(), "first": None}

    def emit(row):
        history.append(row)
        if rd is not None:
            rd.write(row)

    def process(s0, n, out):
        host = jax.tree.map(host_array, out)
        bad = int(host["bad_step"])
        for j in range(n):
            s = s0 + j
            if 0 <= bad <= s:
                loss = float(host["loss"][j])
                emit({"step": s, "event": "non-finite", "loss": loss})
                bar.close()
                where = f"; last checkpoint: {rd.checkpoints.directory / str(rd.checkpoints.latest_step())}" if (
                    rd is not None and rd.checkpoints.latest_step() is not None) else ""  # fmt: skip
                raise NonFiniteLossError(
                    f"loss or gradient is not finite at step {s} (loss = {loss}); training stopped before applying "
                    f"that update. Nothing was written after step {s}{where}.", step=s)  # fmt: skip
            window.append((float(host["loss"][j]), {k: float(v[j]) for k, v in host["metrics"].items()}))
            if (s + 1) % log_every == 0 or s + 1 == steps:
                now = time.perf_counter()
                row = {"step": s + 1, "loss": float(np.mean([w[0] for w in window]))}
                for name in window[0][1]:
                    row[name] = float(np.mean([w[1][name] for w in window]))
                row["steps_per_sec"] = len(window) / max(now - clock["t"], 1e-9)
                row["time"] = now - t_start
                emit(row)
                bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
                window.clear()
                clock["t"] = now
        bar.update(n)
        if clock["first"] is None:
            clock["first"] = (time.perf_counter(), s0 + n)

    def view(tree):
        return nnx.merge(graphdef, tree, state.rest)

    pending: list[tuple[int, int, Any]] = []
    s = start
    if rd is not None and start < steps:
        emit({"step": start, "event": "resume" if latest is not None else "start"})
    while s < steps and not stopped:
        n = min(steps_per_call - s % steps_per_call, steps - s)
        for every in (checkpoint_every if rd is not None else None, validate_every if validate else None):
            if every:
                n = min(n, every - s % every)
        state, out = call(state, data_arrays, np.int32(n))
        pending.append((s, n, out))
        s += n
        if len(pending) > 1:
            process(*pending.pop(0))
        at_ckpt = rd is not None and checkpoint_every is not None and s % checkpoint_every == 0
        at_val = validate is not None and (s % validate_every == 0 or s == steps)
        if not (at_ckpt or at_val or s == steps):
            continue
        while pending:
            process(*pending.pop(0))
        if at_val:
            validated = state.ema if state.ema is not None else state.params
            value = float(validate(view(validated)))
            value = value if math.isfinite(value) else math.inf
            if value < best_value:
                best_value, best_step, bad_count = value, s, 0
                best = replicate(validated, mesh)
            else:
                bad_count += 1
            emit({"step": s, "validation": value, "best": best_value, "best_step": best_step})
            stopped = patience is not None and bad_count >= patience
        if rd is not None and (at_ckpt or s == steps or stopped):
            meta = {"best_value": None if math.isinf(best_value) else best_value, "best_step": best_step,
                    "bad_count": bad_count, "stopped_early": stopped}  # fmt: skip
            rd.checkpoints.save(s, (state, best), meta)
    jax.block_until_ready(state)
    t_end = time.perf_counter()
    bar.close()
    if rd is not None:
        rd.checkpoints.close()
    rate = None
    if clock["first"] is not None and s > clock["first"][1]:
        rate = (s - clock["first"][1]) / max(t_end - clock["first"][0], 1e-9)
    nnx.update(model, state.params, state.rest)
    return FitResult(
        model=model,
        ema_model=view(state.ema) if state.ema is not None else None,
        best_model=view(best) if (best is not None and best_step is not None) else None,
        step=int(host_array(state.step)),
        history=history,
        wall_time=time.perf_counter() - t_start,
        steps_per_sec=rate,
        best_value=None if math.isinf(best_value) else best_value,
        stopped_early=stopped,
    )
