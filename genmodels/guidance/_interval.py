"""The guidance interval (Kynkaanniemi et al. 2024): guide only at noise levels sigma in [lo, hi]."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from genmodels._checks import is_concrete
from genmodels.errors import ArgumentError, ArgumentTypeError


def _bound(name: str, value: Any) -> Float[Array, ""]:
    try:
        arr = jnp.asarray(value)
    except (TypeError, ValueError) as err:
        raise ArgumentTypeError(
            f"GuidanceInterval: {name} must be a number (a noise level), got {value!r:.60}."
        ) from err
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise ArgumentTypeError(f"GuidanceInterval: {name} must be a real number, got dtype {arr.dtype}.")
    if arr.ndim != 0:
        raise ArgumentError(f"GuidanceInterval: {name} must be a scalar noise level, got shape {tuple(arr.shape)}.")
    return arr.astype(jnp.result_type(float))


class GuidanceInterval(eqx.Module):
    """The noise levels at which a guidance wrapper guides: lo <= sigma <= hi (both ends included).

    Outside the interval a guided model returns its conditional (good) model alone and skips the second
    network evaluation. Kynkaanniemi et al. (2024) guide EDM2 models only in the middle of the noise range,
    e.g. ``GuidanceInterval(0.28, 5.42)`` for EDM2-S on ImageNet-512: guidance at high noise mostly collapses
    variety, at low noise it does little. ``hi`` may be ``inf`` (guidance from the start of a schedule that
    starts at sigma = inf). ``lo`` and ``hi`` are traced leaves, so new values reuse the compiled sampler.

    Args:
        lo: lowest guided noise level, >= 0.
        hi: highest guided noise level, >= lo (may be inf).

    Raises:
        ArgumentError: lo > hi, lo < 0, a NaN bound or lo = inf (checked now for concrete values, inside the
            compiled program for traced ones).
    """

    lo: Float[Array, ""]
    hi: Float[Array, ""]

    def __init__(self, lo: Any, hi: Any = float("inf")):
        lo, hi = _bound("lo", lo), _bound("hi", hi)
        msg = "GuidanceInterval(lo, hi) needs 0 <= lo <= hi, lo finite, no NaN"
        if is_concrete(lo) and is_concrete(hi):
            a, b = float(np.asarray(lo)), float(np.asarray(hi))
            if not (np.isfinite(a) and 0.0 <= a <= b):  # NaN fails every comparison
                raise ArgumentError(f"{msg}; got lo={a}, hi={b}.")
        else:
            bad = ~(jnp.isfinite(lo) & (lo >= 0) & (lo <= hi))
            lo = eqx.error_if(lo, bad, f"{msg}.")
        self.lo = lo
        self.hi = hi

    def contains(self, sigma: Any) -> Bool[Array, "*rows"]:
        """lo <= sigma <= hi, elementwise (sigma a scalar or one level per batch row)."""
        sigma = jnp.asarray(sigma)
        return (sigma >= self.lo) & (sigma <= self.hi)


def as_interval(interval: Any) -> GuidanceInterval | None:
    """``None`` (guide at every level), a :class:`GuidanceInterval`, or a pair ``(lo, hi)``."""
    if interval is None or isinstance(interval, GuidanceInterval):
        return interval
    if isinstance(interval, (tuple, list)) and len(interval) == 2:
        return GuidanceInterval(*interval)
    raise ArgumentTypeError(
        f"interval must be None (guide at every noise level), gm.guidance.GuidanceInterval(lo, hi) or a pair "
        f"(lo, hi); got {interval!r:.60}."
    )
