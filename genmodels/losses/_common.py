"""Shared plumbing of the losses: batches, validation, reductions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array

from genmodels._checks import check_finite, check_known
from genmodels.models._common import check_batch_labels

REDUCTIONS = ("mean", "sum")
_X_KEYS = ("x", "x0", "image", "images", "data")
_LABEL_KEYS = ("labels", "label", "y")


def split_batch(batch: Any, name: str = "batch") -> tuple[Array, Array | None]:
    """(x0, labels) from a batch: an array x0 of shape (batch, ...), a tuple ``(x0,)`` or ``(x0, labels)``,
    or a dict with ``"x"`` (or x0/image/images/data) and optionally ``"labels"`` (or label/y).

    x0 must be floating point with at least 2 dimensions (batch first) and finite (checked inside jit);
    labels an integer array of shape (batch,). Labels in the batch are passed to the model, so an
    unconditional model needs batches without labels.
    """
    labels = None
    if isinstance(batch, Mapping):
        xk = [k for k in _X_KEYS if k in batch]
        if not xk:
            raise ValueError(f"a dict {name} needs the data under one of {_X_KEYS}; got keys {sorted(batch)}.")
        x0 = batch[xk[0]]
        lk = [k for k in _LABEL_KEYS if k in batch]
        labels = batch[lk[0]] if lk else None
    elif isinstance(batch, (tuple, list)):
        if len(batch) not in (1, 2):
            raise ValueError(f"a tuple {name} must be (x0,) or (x0, labels), got {len(batch)} entries.")
        x0 = batch[0]
        labels = batch[1] if len(batch) == 2 else None
    else:
        x0 = batch
    x0 = check_data(x0, f"{name} data")
    return x0, check_batch_labels(labels, x0, f"{name} labels")


def check_data(x0: Any, name: str = "x0") -> Array:
    x0 = jnp.asarray(x0)
    if x0.ndim < 2:
        raise ValueError(f"{name} must have shape (batch, *dims) with at least 2 dimensions, got {tuple(x0.shape)}.")
    if x0.shape[0] < 1:
        raise ValueError(f"{name} must have at least one row, got shape {tuple(x0.shape)}.")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating point, got {x0.dtype}; cast it with .astype(jnp.float32).")
    return check_finite(name, x0, "the training data must be finite")


def row_error(diff: Array, reduction: str) -> Array:
    """Squared error per batch row: mean over the data dimensions ("mean") or their sum ("sum")."""
    check_known("reduction", reduction, REDUCTIONS)
    axes = tuple(range(1, diff.ndim))
    sq = diff**2
    return jnp.mean(sq, axis=axes) if reduction == "mean" else jnp.sum(sq, axis=axes)


def row_reduce(value: Array, x: Array, reduction: str) -> Array:
    """Per-row quantity summed over the data dimensions -> divided by their number for "mean"."""
    check_known("reduction", reduction, REDUCTIONS)
    return value / (x.size // x.shape[0]) if reduction == "mean" else value


def finish(loss: Array, metrics: dict, with_metrics: bool):
    loss = jnp.asarray(loss)
    if with_metrics:
        return loss, {"loss": loss, **metrics}
    return loss


def rows_of(value, x):
    return value.reshape(value.shape + (1,) * (x.ndim - 1))
