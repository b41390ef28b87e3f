"""Input validation shared by the library.

Two kinds of checks, in the equinox style:

* trace-time checks on static facts (shapes, dtypes, option values) raise ``gm.errors.ArgumentError`` /
  ``ArgumentTypeError`` (``ValueError`` / ``TypeError`` subclasses) at once, naming the argument and what
  was expected;
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

from genmodels.errors import ArgumentError, ArgumentTypeError, ScheduleError


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values known now (not a tracer inside ``jit``)."""
    return not isinstance(x, jax.core.Tracer)


def check_float_dtype(name: str, x: jax.Array) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ArgumentTypeError(f"{name} must have a floating dtype, got {x.dtype}; cast it with .astype(jnp.float32).")


def check_shape(name: str, x: jax.Array, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ArgumentError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}.")


def check_finite(name: str, x: jax.Array, hint: str = "") -> jax.Array:
    """Return ``x``, raising (eagerly or inside jit via ``eqx.error_if``) if it has NaN or inf."""
    msg = f"{name} contains NaN or inf values{'; ' + hint if hint else '.'}"
    if is_concrete(x):
        if not bool(np.all(np.isfinite(np.asarray(x)))):
            raise ArgumentError(msg)
        return x
    return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), msg)


def as_sigma_schedule(sigmas: Any, name: str = "sigmas", *, allow_inf_start: bool = True) -> jax.Array:
    """Validate a noise schedule: a 1-D, strictly descending array of non-negative sigmas.

    The first entry may be ``inf`` (pure noise, e.g. the Linear path at t = 1) when
    ``allow_inf_start``; the last may be 0 (sample at zero noise). Concrete schedules are checked now
    (:class:`~genmodels.errors.ScheduleError` naming ``name``; an ascending one is called ascending);
    traced ones inside the compiled program.
    """
    try:
        arr = jnp.asarray(sigmas)
    except (TypeError, ValueError) as err:  # None, strings, ragged lists: JAX's message names no argument
        raise ArgumentTypeError(
            f"{name} must be a 1-D array of noise levels (e.g. gm.schedules.karras(steps)), got {sigmas!r:.80}."
        ) from err
    if not (jnp.issubdtype(arr.dtype, jnp.integer) or jnp.issubdtype(arr.dtype, jnp.floating)):
        raise ArgumentTypeError(f"{name} must hold real noise levels, got dtype {arr.dtype}.")
    if arr.ndim != 1:
        raise ScheduleError(f"{name} must be a 1-D array of noise levels, got shape {tuple(arr.shape)}.")
    if arr.shape[0] < 2:
        raise ScheduleError(f"{name} needs at least 2 entries (a start and an end level), got {arr.shape[0]}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if is_concrete(sigmas):
        _check_concrete_schedule(name, np.asarray(sigmas, dtype=np.float64), allow_inf_start)
        return arr
    ok = jnp.all(arr[1:] < arr[:-1]) & jnp.all(arr >= 0) & ~jnp.any(jnp.isnan(arr))
    return eqx.error_if(arr, ~ok, f"{name} must be strictly descending and non-negative.")


def _check_concrete_schedule(name: str, v: np.ndarray, allow_inf_start: bool) -> None:
    if np.any(np.isnan(v)):
        raise ScheduleError(f"{name} contains NaN.")
    if np.any(v < 0):
        raise ScheduleError(f"{name} must be non-negative, got minimum {v.min()}.")
    if np.any(np.isinf(v[1:])) or (np.isinf(v[0]) and not allow_inf_start):
        where = "after the first entry" if allow_inf_start else "anywhere"
        raise ScheduleError(f"{name} may not contain inf {where}; got {v.tolist()[:4]}...")
    steps = np.diff(v)
    if np.all(steps > 0):
        raise ScheduleError(
            f"{name} is ascending ({v[0]} up to {v[-1]}); a schedule must be strictly descending, from high "
            "noise to low (reverse it, or check the sigma_min / sigma_max it was built from)."
        )
    if not np.all(steps < 0):
        bad = int(np.argmax(~(steps < 0)))
        raise ScheduleError(
            f"{name} must be strictly descending (from high noise to low), but entry {bad + 1} "
            f"({v[bad + 1]}) is not below entry {bad} ({v[bad]})."
        )


def max_safe_sigma(dtype: Any) -> float:
    """The largest noise level that ``dtype`` carries safely: sqrt(finfo(dtype).max / 4).

    Samplers and preconditionings form sigma^2 (sigma^2 + sigma_data^2, sigma_from^2 - sigma_to^2) and
    sigma x noise; this bound keeps a factor 4 of headroom on sigma^2 and a factor >= 64 on sigma x noise
    for |noise| <= 8. It is 127.98 for float16 (whose largest value is 65504) and about 9e18 for
    bfloat16, float32 and float64. Measured on main: float16 samples become NaN from sigma_max = 300.
    """
    return float(np.sqrt(float(jnp.finfo(dtype).max) / 4.0))


def check_schedule_dtype(sigmas: Any, dtype: Any, name: str = "sigmas") -> Any:
    """Return ``sigmas``, refusing a schedule whose largest finite sigma is unsafe for ``dtype``.

    Above :func:`max_safe_sigma` (128 for float16) sigma^2 and sigma x noise overflow to inf and the samples
    become NaN. A leading ``inf`` (pure noise, handled by the sampler's limit at infinity) is ignored.
    Non-floating dtypes are not checked. A concrete schedule is checked now
    (:class:`~genmodels.errors.ScheduleError` naming the dtype and the largest safe sigma); a traced one
    inside the compiled program (``eqx.error_if``, which the public entry points re-raise as
    :class:`~genmodels.errors.RuntimeCheckError`), for the narrow dtypes only (float16, float8: the wide
    ones need no run-time check).
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        return sigmas
    limit = max_safe_sigma(dtype)
    msg = (
        f"{name} reaches sigma above {limit:.6g}, the largest noise level that {dtype.name} carries safely "
        f"(sigma^2 and sigma x noise overflow {dtype.name}'s maximum {float(jnp.finfo(dtype).max):.6g}); "
        f"build the schedule with sigma_max <= {limit:.6g}, or sample in float32."
    )
    if is_concrete(sigmas):
        v = np.asarray(sigmas, dtype=np.float64).ravel()
        finite = v[np.isfinite(v)]
        if finite.size and float(finite.max()) > limit:
            raise ScheduleError(msg.replace("reaches sigma above", f"reaches sigma = {float(finite.max()):.6g} above"))
        return sigmas
    if limit > 1e15:
        return sigmas  # bfloat16 / float32 / float64 (limit ~9e18): no run-time check in the program
    arr = jnp.asarray(sigmas)
    top = jnp.max(jnp.where(jnp.isfinite(arr), arr, 0))
    return eqx.error_if(sigmas, top > limit, msg)


def check_count(name: str, n: Any, minimum: int = 1) -> int:
    """``n`` as a Python int >= ``minimum`` (numpy integers accepted; bools, floats and anything else are
    refused with an :class:`~genmodels.errors.ArgumentError`, a ``ValueError``, naming ``name``)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ArgumentError(f"{name} must be an int >= {minimum}, got {n!r} of type {type(n).__name__}.")
    if n < minimum:
        raise ArgumentError(f"{name} must be an int >= {minimum}, got {int(n)}.")
    return int(n)


def check_known(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ArgumentError(f"unknown {name} {value!r}; expected one of {allowed}.")


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Eager check of a Python/numpy scalar option; traced values are left to the caller."""
    if isinstance(value, jax.core.Tracer):
        return
    try:
        v = np.asarray(value)
    except (TypeError, ValueError):
        v = np.asarray(None, dtype=object)
    if v.dtype.kind not in "biuf":
        raise ArgumentTypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}.")
    if v.size != 1 or not np.isfinite(v) or (v < 0 if allow_zero else v <= 0):
        rel = ">= 0" if allow_zero else "> 0"
        shown = float(v) if v.size == 1 and v.dtype.kind in "iuf" else value  # 2.5, not Array(2.5, dtype=...)
        raise ArgumentError(f"{name} must be a finite number {rel}, got {shown!r}.")


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
            raise ArgumentError(f"{msg} Found values such as {bad}.")
        return x
    return eqx.error_if(x, ~jnp.all((x == 0) | (x == 1)), msg)


def check_n_dims(name: str, n: Any) -> int:
    """``n`` as a Python int >= 1 (a size: dimensions, masks, widths); :func:`check_count` with minimum 1.

    Its message used to call every such size "the number of binary dimensions" (issue 9); it now names the
    argument only."""
    return check_count(name, n)


def check_key(key: Any) -> None:
    """One JAX PRNG key, typed (``jax.random.key``) or raw (``PRNGKey``: uint32 of shape (2,)); a batch of keys
    or anything else is refused naming ``key``."""
    typed = isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    raw = isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.ndim >= 1 and key.shape[-1] == 2
    if not (typed or raw):
        raise ArgumentTypeError(f"key must be a JAX PRNG key (jax.random.key(seed) or PRNGKey(seed)), got {key!r}.")
    batch = key.shape if typed else key.shape[:-1]
    if batch:
        raise ArgumentError(
            f"key must be one PRNG key, got a batch of keys of shape {batch}. One key gives the whole batch of "
            "samples (the shape's first entry); for one sample run per key, use jax.vmap over gm.sample."
        )
