"""Classifier-free guidance training: label dropout (Ho & Salimans 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from genmodels.errors import ArgumentError
from genmodels.losses._common import split_batch


def drop_labels(key: PRNGKeyArray, labels: Int[Array, " batch"], p: float, null_label: int) -> Int[Array, " batch"]:
    """Replace each label by ``null_label`` with probability ``p`` (independently per row).

    For ``gm.nets`` networks built with ``num_classes=K`` the null label is K: the network then learns the
    unconditional model too, which ``gm.guidance.ClassifierFree`` uses at sampling time.
    """
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.ndim != 1:
        raise ArgumentError(f"labels must be a 1-D integer array, got {labels.dtype}{tuple(labels.shape)}.")
    if isinstance(p, (int, float)) and not 0.0 <= p <= 1.0:
        raise ArgumentError(f"p must be a probability in [0, 1], got {p}.")
    drop = jax.random.bernoulli(key, p, labels.shape)
    return jnp.where(drop, jnp.asarray(null_label, labels.dtype), labels)


def with_label_dropout(loss_fn: Callable, p: float, null_label: int) -> Callable:
    """``loss_fn(model, batch, key)`` whose batch labels are first dropped to ``null_label`` with
    probability ``p`` (:func:`drop_labels`); the batch must carry labels ((x0, labels) or a dict). Returns
    what ``loss_fn`` returns: (loss, metrics) for the ``gm.losses`` losses."""

    def wrapped(model: Any, batch: Any, key: PRNGKeyArray):
        x0, labels = split_batch(batch)
        if labels is None:
            raise ArgumentError("label dropout needs batches with labels: (x0, labels) or {'x': x0, 'labels': labels}.")
        k_drop, k_loss = jax.random.split(key)
        return loss_fn(model, (x0, drop_labels(k_drop, labels, p, null_label)), k_loss)

    return wrapped
