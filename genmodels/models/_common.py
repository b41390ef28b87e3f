"""How the losses and wrappers talk to a model: denoiser, score and (optional) labels.

A *model* here is a ``gm.protocols.AbstractDenoiserModel`` (every ``gm.models`` class, the analytic
``gm.targets``, the ``gm.denoisers`` adapters), or a plain callable ``D(x, sigma)`` / ``D(x, sigma, labels)``
(wrapped once by ``gm.denoisers.as_denoiser``). All work in the EDM coordinates x = x0 + sigma eps,
sigma a scalar or one value per batch row.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels.denoisers import as_denoiser, score_from_denoised
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.protocols import AbstractDenoiserModel, HasScore


def sigma_rows(sigma, x: Array) -> Float[Array, " batch"]:
    """sigma as shape (batch,) in x's dtype (a scalar is broadcast)."""
    sigma = jnp.asarray(sigma, dtype=x.dtype)
    if sigma.ndim == 0:
        return jnp.broadcast_to(sigma, x.shape[:1])
    if sigma.shape != x.shape[:1]:
        raise ArgumentError(
            f"sigma must be a scalar or have shape ({x.shape[0]},) (one per row), got {tuple(sigma.shape)}."
        )
    return sigma


def call_net(net, x, cond, labels):
    """``net(x, cond)`` or, with labels, ``net(x, cond, labels)`` (plain callables need no labels argument)."""
    return net(x, cond) if labels is None else net(x, cond, labels)


def check_batch_labels(labels, x: Array, name: str = "labels") -> Array | None:
    """Labels must be an integer array with one entry per batch row of x."""
    if labels is None:
        return None
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ArgumentTypeError(f"{name} must be an integer array, got dtype {labels.dtype}.")
    if labels.shape != x.shape[:1]:
        raise ArgumentError(
            f"{name} must have shape ({x.shape[0]},) (one per batch row of x), got {tuple(labels.shape)}."
        )
    return labels


def denoise(model: Any, x: Array, sigma, labels=None) -> Array:
    """D(x, sigma[, labels]) of a denoiser model or a plain denoiser callable."""
    return as_denoiser(model).denoise(x, sigma, labels)


def score(model: Any, x: Array, sigma, labels=None) -> Array:
    """grad_x log p_sigma(x): natively for a ``gm.protocols.HasScore`` model, by Tweedie,
    (D - x) / sigma^2, for any other denoiser model; a plain callable is taken to be a score function
    ``s(x, sigma)`` here (the score-matching losses' convention)."""
    if isinstance(model, HasScore):
        return model.score(x, sigma, labels)
    if isinstance(model, AbstractDenoiserModel):
        return score_from_denoised(x, sigma_rows(sigma, x), model.denoise(x, sigma, labels))
    return call_net(model, x, sigma, labels)


def safe_sigma(sigma: Array) -> Array:
    """sigma with zeros replaced by 1 (for evaluating a network where the result is then discarded)."""
    return jnp.where(sigma > 0, sigma, jnp.ones_like(sigma))
