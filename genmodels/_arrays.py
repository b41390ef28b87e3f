"""Small array helpers shared across the library."""

from __future__ import annotations

import jax.numpy as jnp


def rows(value, x):
    """Broadcast a scalar or per-row coefficient of shape (batch,) against ``x`` of shape (batch, ...)."""
    value = jnp.asarray(value, dtype=x.dtype)
    if value.ndim == 0:
        return value
    return value.reshape(value.shape + (1,) * (x.ndim - value.ndim))
