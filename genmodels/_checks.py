"""Input validation shared by the library.

Two kinds of checks, in the equinox style:

* trace-time checks on static facts (shapes, dtypes, option values) raise ``ValueError`` /
  ``TypeError`` at once, naming the argument and what was expected;
* checks on traced values (NaNs, ordering of a traced schedule) use ``eqx.error_if`` so that they run
  inside the compiled program without a host round-trip.

Arrays whose values are concrete (numpy arrays, or jax arrays outside ``jit``) are checked eagerly with
numpy so that the user sees the error where the object is built.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values known now (not a tracer inside ``jit``)."""
    return not isinstance(x, jax.core.Tracer)


def check_float_dtype(name: str, x: jax.Array) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}; cast it with .astype(jnp.float32).")


def check_shape(name: str, x: jax.Array, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}.")


def check_finite(name: str, x: jax.Array, hint: str = "") -> jax.Array:
    """Return ``x``, raising (eagerly or inside jit via ``eqx.error_if``) if it has NaN or inf."""
    msg = f"{name} contains NaN or inf values{'; ' + hint if hint else '.'}"
    if is_concrete(x):
        if not bool(np.all(np.isfinite(np.asarray(x)))):
            raise ValueError(msg)
        return x
    return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), msg)


def as_sigma_schedule(sigmas: Any, name: str = "sigmas", *, allow_inf_start: bool = True) -> jax.Array:
    """Validate a noise schedule: a 1-D, strictly descending array of non-negative sigmas.

    The first entry may be ``inf`` (pure noise, e.g. the Linear path at t = 1) when
    ``allow_inf_start``; the last may be 0 (sample at zero noise). Concrete schedules are checked now;
    traced ones inside the compiled program.
    """
    arr = jnp.asarray(sigmas)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of noise levels, got shape {tuple(arr.shape)}.")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 entries (a start and an end level), got {arr.shape[0]}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if is_concrete(sigmas) and not isinstance(sigmas, jax.core.Tracer):
        v = np.asarray(arr, dtype=np.float64)
        if np.any(np.isnan(v)):
            raise ValueError(f"{name} contains NaN.")
        if np.any(v < 0):
            raise ValueError(f"{name} must be non-negative, got minimum {v.min()}.")
        if np.any(np.isinf(v[1:])) or (np.isinf(v[0]) and not allow_inf_start):
            where = "after the first entry" if allow_inf_start else "anywhere"
            raise ValueError(f"{name} may not contain inf {where}; got {v.tolist()[:4]}...")
        if not np.all(np.diff(v) < 0):
            bad = int(np.argmax(~(np.diff(v) < 0)))
            raise ValueError(
                f"{name} must be strictly descending (from high noise to low), but entry {bad + 1} "
                f"({v[bad + 1]}) is not below entry {bad} ({v[bad]}). Build schedules with gm.schedules."
            )
        return arr
    ok = jnp.all(arr[1:] < arr[:-1]) & jnp.all(arr >= 0) & ~jnp.any(jnp.isnan(arr))
    return eqx.error_if(arr, ~ok, f"{name} must be strictly descending and non-negative.")


def check_known(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {allowed}.")


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Eager check of a Python/numpy scalar option; traced values are left to the caller."""
    if isinstance(value, jax.core.Tracer):
        return
    v = np.asarray(value)
    if v.size != 1 or not np.isfinite(v) or (v < 0 if allow_zero else v <= 0):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {rel}, got {value!r}.")


def check_binary(name: str, x: Array) -> Array:
    """Return ``x``, raising (eagerly, or inside jit via ``eqx.error_if``) unless every entry is 0 or 1."""
    msg = (
        f"{name} must be binary: every entry 0 or 1 (the models are products of Bernoulli conditionals). "
        "Binarise the data first, e.g. (x > 0.5).astype(jnp.float32)."
    )
    if is_concrete(x):
        v = np.asarray(x)
        if not np.all((v == 0) | (v == 1)):
            bad = v[~((v == 0) | (v == 1))].ravel()[:3].tolist()
            raise ValueError(f"{msg} Found values such as {bad}.")
        return x
    return eqx.error_if(x, ~jnp.all((x == 0) | (x == 1)), msg)


def check_n_dims(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive int (the number of binary dimensions), got {n!r}.")
    return int(n)
