"""Small array helpers shared across the library, and the rule for numeric hyper-parameters.

Numbers are leaves, never Python floats
---------------------------------------
Every number of a path, preconditioning, noise distribution or weighting (sigma_data, sigma_min, beta_max,
p_mean, ...) is a pytree *leaf*: a new value reuses the compiled program instead of compiling another.

* :func:`number` is the field converter. A concrete value is stored as a 0-d ``numpy.float64`` array, an
  exact copy of what was given whatever ``jax_enable_x64`` says at construction time; a traced value (a
  module built inside ``jit``) is kept as the jax array it is. ``eqx.filter_jit`` and ``jax.jit`` trace both.
* :func:`like` casts a leaf to the dtype of the input at *use*: float64 inputs compute in float64 (a
  float32 copy of 0.002 would cost 9 digits), float32 / float16 inputs stay float32 / float16 instead of
  being promoted by a strongly typed leaf.

Anything that sets a shape (a count of levels, iDDPM's table length, the number of probes) stays static.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from genmodels.errors import ArgumentError, ArgumentTypeError

Number = Float[ArrayLike, ""]
"""A scalar hyper-parameter as stored by :func:`number`: a 0-d float64 numpy array, or a traced scalar."""

RealScalar = Real[ArrayLike, ""]
"""A scalar number as an argument: a Python int or float, a numpy or jax scalar, or a traced one."""

Count = int | np.integer
"""A count as an argument: a Python or numpy integer (bools are refused by :func:`~genmodels._checks.check_count`)."""


def rows(value, x):
    """Broadcast a scalar or per-row coefficient of shape (batch,) against ``x`` of shape (batch, ...)."""
    value = jnp.asarray(value, dtype=x.dtype)
    if value.ndim == 0:
        return value
    return value.reshape(value.shape + (1,) * (x.ndim - value.ndim))


def floating(x: ArrayLike) -> Array:
    """``x`` as a jax array of a floating dtype (ints and bools become the default float dtype)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.result_type(float))


def like(value: ArrayLike, x: Array) -> Array:
    """The leaf ``value`` cast to ``x``'s dtype (the dtype of the input, at use)."""
    return jnp.asarray(value, dtype=x.dtype)


def to_leaf(name: str, value: Any, *, ndim: int | None = 0) -> Any:
    """``value`` as a floating leaf: a float64 numpy array when concrete, the traced array otherwise.

    Raises :class:`~genmodels.errors.ArgumentTypeError` naming ``name`` for a value that is not a real
    number (a string, None, a complex number) and :class:`~genmodels.errors.ArgumentError` for the wrong
    number of dimensions (``ndim=None`` accepts any).
    """
    if isinstance(value, jax.core.Tracer):
        out = value if jnp.issubdtype(value.dtype, jnp.floating) else value.astype(jnp.result_type(float))
    else:
        try:
            arr = np.asarray(value)
        except Exception as err:  # noqa: BLE001 - anything numpy cannot read is a wrong type here
            raise ArgumentTypeError(f"{name} must be a real number, got {type(value).__name__}.") from err
        if arr.dtype.kind not in "iuf" and not _is_ml_float(arr):
            raise ArgumentTypeError(f"{name} must be a real number, got {value!r}.")
        out = arr.astype(np.float64)
    if ndim is not None and out.ndim != ndim:
        what = "a scalar" if ndim == 0 else f"a {ndim}-D array"
        raise ArgumentError(f"{name} must be {what}, got shape {tuple(out.shape)}.")
    return out


def _is_ml_float(arr: np.ndarray) -> bool:
    """True for the ml_dtypes floats (bfloat16, float8) that jax arrays convert to."""
    try:
        return jnp.issubdtype(arr.dtype, jnp.floating)
    except TypeError:
        return False


def number(
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = True,
    open_high: bool = True,
) -> Callable[[Any], Any]:
    """Field converter for a scalar hyper-parameter ``name``: :func:`to_leaf`, then checks of its value.

    A concrete value must be finite and, when given, lie above ``low`` (strictly unless ``open_low`` is
    False) and below ``high`` (strictly unless ``open_high`` is False); a traced one is stored unchecked.
    Errors are :class:`~genmodels.errors.ArgumentError` naming ``name`` and the value.
    """

    def convert(value):
        leaf = to_leaf(name, value)
        if isinstance(leaf, np.ndarray):
            check_number(name, leaf, low=low, high=high, open_low=open_low, open_high=open_high)
        return leaf

    return convert


def check_number(
    name: str,
    value: ArrayLike,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = True,
    open_high: bool = True,
) -> None:
    """Eager check of a concrete scalar: finite (never NaN) and in the given range, else ArgumentError."""
    v = float(np.asarray(value))
    if not np.isfinite(v):
        raise ArgumentError(f"{name} must be a finite number, got {v}.")
    if low is not None and (v <= low if open_low else v < low):
        raise ArgumentError(f"{name} must be {'>' if open_low else '>='} {low}, got {v}.")
    if high is not None and (v >= high if open_high else v > high):
        raise ArgumentError(f"{name} must be {'<' if open_high else '<='} {high}, got {v}.")


def is_traced(*values: Any) -> bool:
    """True when any of ``values`` is a tracer (its value is not known now)."""
    return any(isinstance(v, jax.core.Tracer) for v in values)


def check_less(name_lo: str, lo: Any, name_hi: str, hi: Any) -> None:
    """Eager check that concrete ``lo < hi`` (both named in the error); traced values are skipped."""
    if is_traced(lo, hi):
        return
    a, b = float(np.asarray(lo)), float(np.asarray(hi))
    if not a < b:
        raise ArgumentError(f"need {name_lo} < {name_hi}, got {name_lo}={a}, {name_hi}={b}.")
