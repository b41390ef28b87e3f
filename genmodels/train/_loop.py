"""The state of one ``fit`` run and its steps: build, restore, run the calls, validate, checkpoint."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from genmodels.data import AbstractDataset
from genmodels.errors import ArgumentError, NonFiniteError, RunDirectoryError
from genmodels.train._checkpoint import Checkpointer, host_array
from genmodels.train._ema import EMA
from genmodels.train._fingerprint import data_fingerprint, describe, fingerprint_diff, optimizer_fingerprint
from genmodels.train._log import MetricsLog
from genmodels.train._policies import Checkpoints, Execution, Logging, Validation, ValidationRecord
from genmodels.train._run_directory import RunDirectory
from genmodels.train._step import TrainState, make_train_call, replicate


class Loop:
    """One run of :func:`~genmodels.train.fit`: the training state, the policies and the run directory."""

    def __init__(self, model: nnx.Module, loss_fn: Callable, dataset: AbstractDataset, *, key: jax.Array,
                 steps: int, optimizer: optax.GradientTransformation, run: RunDirectory | None, ema: EMA | None,
                 checkpoints: Checkpoints, validation: Validation | None, log: Logging, execution: Execution):  # fmt: skip
        self.steps, self.run, self.key = steps, run, key
        self.checkpoints, self.validation, self.log, self.execution = checkpoints, validation, log, execution
        self.mesh = execution.mesh
        self.graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        state = TrainState(params=params, rest=rest, ema=params if ema is not None else None,
                           opt_state=optimizer.init(params), step=jnp.int32(0), bad_step=jnp.int32(-1),
                           key=jax.random.key_data(key))  # fmt: skip
        self.state = jax.tree.map(jnp.asarray, state)  # numpy leaves (e.g. in eqx modules) as JAX stores them
        self.best = params if validation is not None else None
        self.record = ValidationRecord()
        self.history: list[dict] = []
        self.checkpointer = Checkpointer(run.checkpoints_path, keep=checkpoints.keep) if run is not None else None
        self.fingerprint = None
        if run is not None:
            self.fingerprint = {"optimizer": optimizer_fingerprint(optimizer, self.state.opt_state),
                                "loss": describe(loss_fn),
                                "data": data_fingerprint(dataset, jax.random.split(key)[0])}  # fmt: skip
        data_arrays, data_static = eqx.partition(dataset, eqx.is_array)
        self.data_arrays = replicate(data_arrays, self.mesh) if self.mesh is not None else data_arrays
        self.call = make_train_call(self.graphdef, loss_fn, data_static, optimizer, ema, mesh=self.mesh,
                                    compute_dtype=execution.compute_dtype, steps_per_call=execution.steps_per_call,
                                    donate=execution.donate, key_impl=jax.random.key_impl(key))  # fmt: skip
        self.metrics: MetricsLog | None = None
        self.latest: int | None = None
        self.t_end = math.nan

    # ---- restore ----------------------------------------------------------------------------------

    def restore(self, warn: Callable[[str], None]) -> None:
        """Continue from the latest checkpoint when resuming; put the state on the device(s)."""
        run = self.run
        if run is not None and run.resume:
            self.latest = self.checkpointer.latest_step()
        if self.latest is not None:
            self._restore_checkpoint(self.latest, warn)
        if run is not None and run.resume:
            self.history, dropped = run.restart_metrics(self.latest)
            if self.latest is None and dropped:
                warn(f"{run.checkpoints_path} holds no checkpoint: the run starts afresh and the {dropped} rows of "
                     f"its earlier history were removed from {run.metrics_path}.")  # fmt: skip
        self.state = replicate(self.state, self.mesh)  # fresh buffers (donated by the calls)
        self.best = replicate(self.best, self.mesh) if self.best is not None else None

    def _restore_checkpoint(self, latest: int, warn: Callable[[str], None]) -> None:
        where = self.checkpointer.directory / str(latest)
        if latest > self.steps:
            raise ArgumentError(f"steps={self.steps} is fewer than the {latest} steps the run in {self.run.path} has "
                                f"done (checkpoint {where}); ask for steps >= {latest}, or train a shorter run in a "
                                "new run directory.")  # fmt: skip
        diffs = fingerprint_diff(self.checkpointer.read_meta(latest).get("fingerprint") or {}, self.fingerprint)
        what = f"resume=True in {self.run.path} with a different setup than the checkpointed run ({where}): "
        if diffs and self.run.config is not None:  # the config, equal to the run's, is the declared identity
            warn(what + "; ".join(diffs) + ". The run's config is equal, so the run continues.")
        elif diffs:
            raise RunDirectoryError(what + "; ".join(diffs) + ". Resume with the same optimiser, loss and data, or "
                                    "start a new run directory (a RunDirectory config, when equal, lets a run "
                                    "continue with such a difference).")  # fmt: skip
        sharding = NamedSharding(self.mesh, P()) if self.mesh is not None else None
        (self.state, self.best), meta = self.checkpointer.restore(latest, (self.state, self.best), sharding)
        self.record = ValidationRecord.from_meta(meta)
        if not np.array_equal(host_array(self.state.key), np.asarray(jax.random.key_data(self.key))):
            warn("fit was given a different key than the checkpointed run; the run's own key is used so that it "
                 "continues exactly.")  # fmt: skip

    # ---- the loop ---------------------------------------------------------------------------------

    def train(self, t_start: float) -> None:
        """Dispatch the calls up to ``steps`` (or an early stop), one call in flight."""
        start = int(host_array(self.state.step))
        self.metrics = MetricsLog(self.log, steps=self.steps, start=start, history=self.history, run=self.run,
                                  t_start=t_start, where=self._where)  # fmt: skip
        if self.run is not None and start < self.steps:
            self.metrics.emit({"step": start, "event": "resume" if self.latest is not None else "start"})
        every = (
            self.checkpoints.every if self.run is not None else None,
            self.validation.every if self.validation is not None else None,
        )
        pending: list[tuple[int, int, Any]] = []
        s = start
        while s < self.steps and not self.record.stopped:
            n = self.execution.call_length(s, self.steps, *every)
            self.state, out = self.call(self.state, self.data_arrays, np.int32(n))
            pending.append((s, n, out))
            s += n
            if len(pending) > 1:
                self.metrics.process(*pending.pop(0))
            at_ckpt = self.run is not None and self.checkpoints.due(s, end=False)
            at_val = self.validation is not None and self.validation.due(s, self.steps)
            if not (at_ckpt or at_val or s == self.steps):
                continue
            while pending:
                self.metrics.process(*pending.pop(0))
            if at_val:
                self._validate(s)
            if self.run is not None and self.checkpoints.due(s, end=s == self.steps or self.record.stopped):
                meta = {**self.record.to_meta(), "fingerprint": self.fingerprint}
                self.checkpointer.save(s, (self.state, self.best), meta)
        jax.block_until_ready(self.state)
        self.t_end = time.perf_counter()

    def _validate(self, s: int) -> None:
        validated = self.state.ema if self.state.ema is not None else self.state.params
        try:
            value = self.validation.evaluate(self.view(validated), s)
        except NonFiniteError:
            self.metrics.emit({"step": s, "event": "non-finite validation"})
            raise
        self.record, improved = self.validation.record(self.record, value, s)
        if improved:
            self.best = replicate(validated, self.mesh)
        self.metrics.emit({"step": s, "validation": value, "best": self.record.best_value,
                           "best_step": self.record.best_step})  # fmt: skip

    def _where(self) -> str:
        latest = self.checkpointer.latest_step() if self.checkpointer is not None else None
        return f"; last checkpoint: {self.checkpointer.directory / str(latest)}" if latest is not None else ""

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.checkpointer is not None:
            self.checkpointer.close()

    # ---- results ----------------------------------------------------------------------------------

    def view(self, tree: Any) -> nnx.Module | None:
        return nnx.merge(self.graphdef, tree, self.state.rest) if tree is not None else None

    def best_model(self) -> nnx.Module | None:
        return self.view(self.best) if self.record.best_step is not None else None

    @property
    def best_value(self) -> float | None:
        return None if math.isinf(self.record.best_value) else self.record.best_value

    @property
    def steps_per_sec(self) -> float | None:
        return self.metrics.steps_per_sec(int(host_array(self.state.step)), self.t_end) if self.metrics else None
