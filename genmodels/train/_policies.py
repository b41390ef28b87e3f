"""The policies of ``fit``, each a small immutable value: when to checkpoint, when to validate and stop,
how to log, how to execute. Variants are values: ``Checkpoints(every=1000)``, ``Validation(fn, every=500,
patience=5)``, ``Logging(every=50)``, ``Execution(steps_per_call=20, mesh=data_mesh())``.

Steps are counted as completed optimiser steps ``s`` (``s = 0`` before the first update). ``fit`` splits
the run into compiled calls that end at every step where a policy acts (:meth:`Execution.call_length`),
so a resumed run executes the same sequence of calls as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from genmodels._checks import check_count
from genmodels.errors import ArgumentError, ArgumentTypeError, NonFiniteError


def _optional_count(name: str, value: Any) -> int | None:
    return None if value is None else check_count(name, value, 1)


@dataclasses.dataclass(frozen=True)
class Checkpoints:
    """Checkpoint every ``every`` steps (None: only at the end) and keep the latest ``keep`` (None: all).

    A checkpoint is also written when the run ends (last step, or early stop). It needs a run directory.
    """

    every: int | None = None
    keep: int | None = 3

    def __post_init__(self):
        object.__setattr__(self, "every", _optional_count("Checkpoints every", self.every))
        object.__setattr__(self, "keep", _optional_count("Checkpoints keep", self.keep))

    def due(self, step: int, *, end: bool) -> bool:
        """Whether to write a checkpoint after ``step`` steps (``end``: the run stops here)."""
        return end or (self.every is not None and step % self.every == 0)


@dataclasses.dataclass(frozen=True)
class ValidationRecord:
    """The early-stopping state: the best value and its step, validations since, and whether stopped."""

    best_value: float = math.inf
    best_step: int | None = None
    bad_count: int = 0
    stopped: bool = False

    def to_meta(self) -> dict:
        return {"best_value": None if math.isinf(self.best_value) else self.best_value, "best_step": self.best_step,
                "bad_count": self.bad_count, "stopped_early": self.stopped}  # fmt: skip

    @classmethod
    def from_meta(cls, meta: dict) -> ValidationRecord:
        best = meta.get("best_value")
        return cls(math.inf if best is None else best, meta.get("best_step"), meta.get("bad_count", 0),
                   bool(meta.get("stopped_early", False)))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Validation:
    """Validate with ``fn(model) -> float`` (lower is better) every ``every`` steps and at the end; with
    ``patience``, stop after that many validations in a row without improvement.

    ``fit`` validates the EMA model (the raw one without EMA), keeps the parameters of the best value and
    returns them as ``FitResult.best_model``. A non-finite value is an error
    (:class:`~genmodels.errors.NonFiniteError` naming the step): a NaN can be neither better nor worse
    than a number, and a best model chosen around it would be arbitrary.
    """

    fn: Callable[[nnx.Module], float]
    every: int = 1000
    patience: int | None = None

    def __post_init__(self):
        if not callable(self.fn):
            raise ArgumentTypeError(f"Validation fn must be callable as fn(model) -> float, got {self.fn!r}.")
        object.__setattr__(self, "every", check_count("Validation every", self.every, 1))
        object.__setattr__(self, "patience", _optional_count("Validation patience", self.patience))

    def due(self, step: int, steps: int) -> bool:
        return step % self.every == 0 or step == steps

    def evaluate(self, model: nnx.Module, step: int) -> float:
        """``fn(model)`` as a finite float; raises naming the step otherwise."""
        value = self.fn(model)
        try:
            value = float(value)
        except (TypeError, ValueError) as err:
            raise ArgumentTypeError(f"Validation fn must return a scalar, got {type(value).__name__}.") from err
        if not math.isfinite(value):
            raise NonFiniteError(f"the validation function returned {value} at step {step}; training stopped "
                                 "there (earlier checkpoints are kept). Make fn return a finite number.")  # fmt: skip
        return value

    def record(self, rec: ValidationRecord, value: float, step: int) -> tuple[ValidationRecord, bool]:
        """The record after ``value`` at ``step``, and whether it is a new best."""
        if value < rec.best_value:
            return ValidationRecord(value, step, 0, False), True
        bad = rec.bad_count + 1
        return ValidationRecord(
            rec.best_value, rec.best_step, bad, self.patience is not None and bad >= self.patience
        ), False


@dataclasses.dataclass(frozen=True)
class Logging:
    """One ``metrics.jsonl`` row (mean loss and metrics, steps/s) every ``every`` steps and at the end; a
    progress bar on process 0 when ``progress``."""

    every: int = 100
    progress: bool = True

    def __post_init__(self):
        object.__setattr__(self, "every", check_count("Logging every", self.every, 1))
        if not isinstance(self.progress, bool):
            raise ArgumentTypeError(f"Logging progress must be True or False, got {self.progress!r}.")


@dataclasses.dataclass(frozen=True)
class Execution:
    """How the steps run: ``steps_per_call`` steps per compiled call (a ``fori_loop``; 1 is a straight-line
    program), data parallel over ``mesh`` (an axis ``"data"``), the loss in ``compute_dtype`` (e.g.
    ``jnp.bfloat16``; parameters stay float32), the state's buffers donated to the next call."""

    steps_per_call: int = 1
    mesh: jax.sharding.Mesh | None = None
    compute_dtype: Any = None
    donate: bool = True

    def __post_init__(self):
        object.__setattr__(self, "steps_per_call", check_count("Execution steps_per_call", self.steps_per_call, 1))
        if self.mesh is not None and "data" not in self.mesh.axis_names:
            raise ArgumentError(f"Execution mesh must have an axis named 'data', got axes {self.mesh.axis_names}.")
        if self.compute_dtype is not None and not jnp.issubdtype(jnp.dtype(self.compute_dtype), jnp.floating):
            raise ArgumentTypeError(f"Execution compute_dtype must be a floating dtype such as jnp.bfloat16, got "
                                    f"{self.compute_dtype!r}.")  # fmt: skip

    def check_batch_size(self, batch_size: int) -> None:
        if self.mesh is not None and batch_size % self.mesh.shape["data"]:
            n = self.mesh.shape["data"]
            raise ArgumentError(f"batch_size={batch_size} must be divisible by the {n} devices of the mesh axis "
                                "'data' (each device takes batch_size / devices rows).")  # fmt: skip

    def call_length(self, step: int, steps: int, *every: int | None) -> int:
        """Steps of the call that starts after ``step``: up to the next multiple of ``steps_per_call``, the
        end, or the next multiple of any of ``every`` (where a policy acts)."""
        n = min(self.steps_per_call - step % self.steps_per_call, steps - step)
        for e in every:
            if e:
                n = min(n, e - step % e)
        return n
