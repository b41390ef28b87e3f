"""``fit``: a short loop over the compiled train step and the policies (run directory, checkpoints, EMA,
validation, logging, execution).

The host loop only dispatches calls of one compiled program that runs ``n <= k = steps_per_call`` steps
(``n < k`` where a checkpoint, validation or the end falls inside), keeps one call in flight, and reads back
each call's per-step losses one call later, so the device never waits on logging. Calls are aligned to
multiples of ``k`` counted from step 0, so a resumed run executes the same sequence of calls as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from genmodels._checks import check_count, check_key
from genmodels.data import AbstractDataset, check_batch
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.train._checkpoint import host_array
from genmodels.train._ema import EMA
from genmodels.train._fingerprint import check_learning_rates
from genmodels.train._loop import Loop
from genmodels.train._optim import adamw
from genmodels.train._policies import Checkpoints, Execution, Logging, Validation
from genmodels.train._run_directory import RunDirectory


@dataclasses.dataclass
class FitResult:
    """Outcome of :func:`fit`. ``model`` is the input model, updated in place with the final parameters."""

    model: nnx.Module
    ema_model: nnx.Module | None  # the model with EMA parameters (None with ema=None)
    best_model: nnx.Module | None  # the validated model at its best value (None without validation, or none ran)
    step: int  # completed optimiser steps
    history: list[dict]  # the rows of metrics.jsonl (also without a run directory)
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


def _as_key(key: Any) -> jax.Array:
    check_key(key)
    return key if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else jax.random.wrap_key_data(key)


def _check_types(**values: tuple[Any, type | tuple[type, ...]]) -> None:
    for name, (value, kind) in values.items():
        if value is not None and not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise ArgumentTypeError(f"{name} must be a {names} or None, got {type(value).__name__}.")


def _as_run_directory(run_dir: RunDirectory | str | Path | None) -> RunDirectory | None:
    return RunDirectory(run_dir) if isinstance(run_dir, (str, Path)) else run_dir


def fit(
    model: nnx.Module,
    loss_fn: Callable,
    dataset: AbstractDataset,
    *,
    key: jax.Array,
    steps: int,
    optimizer: optax.GradientTransformation | None = None,
    ema: EMA | None = EMA(),
    run_dir: RunDirectory | str | Path | None = None,
    checkpoints: Checkpoints | None = None,
    validation: Validation | None = None,
    log: Logging = Logging(),
    execution: Execution = Execution(),
) -> FitResult:
    """Train ``model`` for ``steps`` optimiser steps on ``dataset``; the model is updated in place.

    ``loss_fn(model, batch, key) -> (loss, metrics)`` (a scalar and a dict of scalars, as every ``gm.losses``
    loss; adapt a function returning only the loss with :func:`scalar_loss`). The batch of step ``s`` is
    ``dataset.batch(data_key, s)`` and its key ``fold_in(loss_key, s)`` with ``data_key, loss_key =
    split(key)``. ``optimizer`` defaults to ``adamw(1e-3)``; a negative learning rate is refused.

    ``run_dir`` (a :class:`RunDirectory`, or a path for a fresh run) receives ``config.json``,
    ``metrics.jsonl`` and ``checkpoints/<step>/`` (every ``checkpoints.every`` steps and at the end; default
    :class:`Checkpoints`). With ``RunDirectory(path, resume=True)`` the run continues from its latest
    checkpoint (afresh if there is none) and ends bit-identical to an uninterrupted run; it is refused when
    ``steps`` is below the steps already done, or when the optimiser, loss or data differ from the
    checkpointed run's (see ``_fingerprint``; with a ``config`` equal to the run's, such a difference is
    only warned about: the config is the run's declared identity). ``ema`` (:class:`EMA`) keeps an average of the parameters;
    ``validation`` (:class:`Validation`) validates and stops early; ``log`` and ``execution`` say how rows are
    written and how steps run.

    Raises:
        NonFiniteLossError: naming the step whose loss or gradient was not finite; that update is
            discarded and nothing is written after it (earlier checkpoints stay).
        RunDirectoryLockedError: when another job holds ``run_dir``.
    """
    t_start = time.perf_counter()
    if not isinstance(model, nnx.Module):
        raise ArgumentTypeError(f"model must be a flax.nnx.Module, got {type(model).__name__}.")
    if not callable(loss_fn):
        raise ArgumentTypeError("loss_fn must be callable as loss_fn(model, batch, key).")
    steps = check_count("steps", steps, 0)
    _check_types(ema=(ema, EMA), run_dir=(run_dir, (RunDirectory, str, Path)), checkpoints=(checkpoints, Checkpoints),
                 validation=(validation, Validation), log=(log, Logging), execution=(execution, Execution))  # fmt: skip
    run = _as_run_directory(run_dir)
    if checkpoints is not None and run is None:
        raise ArgumentError("checkpoints need a run_dir to write them to.")
    key = _as_key(key)
    optimizer = adamw(1e-3) if optimizer is None else optimizer
    check_learning_rates(optimizer, steps)
    check_batch(dataset, jax.random.split(key)[0])
    execution.check_batch_size(dataset.batch_size)
    policies = dict(ema=ema, checkpoints=checkpoints or Checkpoints(), validation=validation, log=log,
                    execution=execution)  # fmt: skip
    with run if run is not None else contextlib.nullcontext():
        loop = Loop(model, loss_fn, dataset, key=key, steps=steps, optimizer=optimizer, run=run, **policies)
        try:
            loop.restore(warn=lambda msg: warnings.warn(msg, stacklevel=3))
            loop.train(t_start)
        finally:
            loop.close()
    # the model's variables (batch statistics, RNG counters) change in training; its other leaves (numbers held
    # in eqx modules, e.g. a preconditioning's sigma_data) do not and cannot be set in place
    nnx.update(model, loop.state.params, nnx.split_state(loop.state.rest, nnx.Variable, ...)[0])
    return FitResult(model=model, ema_model=loop.view(loop.state.ema), best_model=loop.best_model(),
                     step=int(host_array(loop.state.step)), history=loop.history,
                     wall_time=time.perf_counter() - t_start, steps_per_sec=loop.steps_per_sec,
                     best_value=loop.best_value, stopped_early=loop.record.stopped)  # fmt: skip
