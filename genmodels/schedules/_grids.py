"""Noise schedules: descending sigma arrays, in the k-diffusion convention.

A schedule for ``steps`` sampler steps has ``steps + 1`` entries, strictly descending, and (by default)
ends in 0 so that the sampler returns a clean sample. A schedule that ends at some sigma_min > 0 makes
the samplers return x at sigma_min. Every sampler takes its schedule as its first argument.

All builders take ``steps`` as an int (a Python or numpy integer >= 1: it fixes an array length, so it is
static) and the numeric endpoints as numbers, so the same grid can be rebuilt inside ``jit`` with traced
endpoints. Concrete numbers are checked where the schedule is built: finite, 0 < sigma_min < sigma_max,
rho > 0; errors are ``gm.errors.ArgumentError`` naming the argument. Running a schedule in float16 is
checked by the sampler (``genmodels._checks.check_schedule_dtype``): float16 carries sigma <= 128 only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from genmodels._arrays import Count, RealScalar, check_less, check_number, is_traced
from genmodels._checks import check_count
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.paths import AbstractPath


def _check_range(sigma_min: Any, sigma_max: Any) -> None:
    """Concrete endpoints: finite, 0 < sigma_min < sigma_max. Traced ones are left to the samplers."""
    if not is_traced(sigma_min):
        check_number("sigma_min", sigma_min, low=0.0)
    if not is_traced(sigma_max):
        check_number("sigma_max", sigma_max, low=0.0)
    check_less("sigma_min", sigma_min, "sigma_max", sigma_max)


def append_zero(sigmas: Float[ArrayLike, " n"]) -> Float[Array, " n+1"]:
    """Append a final 0 so that the sampler ends on a clean sample."""
    sigmas = jnp.asarray(sigmas)
    return jnp.concatenate([sigmas, jnp.zeros((1,), sigmas.dtype)])


def karras(
    steps: Count,
    sigma_min: RealScalar = 0.002,
    sigma_max: RealScalar = 80.0,
    rho: RealScalar = 7.0,
    *,
    final_zero: bool = True,
) -> Float[Array, " levels"]:
    """EDM grid (Karras et al. 2022, Eq. 5): sigma_i = (max^(1/rho) + i/(N-1) (min^(1/rho) - max^(1/rho)))^rho.

    With ``final_zero`` (default) the ``steps`` levels from sigma_max to sigma_min are followed by 0,
    exactly as k-diffusion's ``get_sigmas_karras(steps, ...)``; without it, ``steps + 1`` levels from
    sigma_max to sigma_min. Either way the result has ``levels = steps + 1`` entries. ``rho`` must be a
    finite number > 0 (rho = 1 is uniform in sigma; EDM uses 7).
    """
    steps = check_count("steps", steps)
    _check_range(sigma_min, sigma_max)
    if not is_traced(rho):
        check_number("rho", rho, low=0.0)
    n = steps if final_zero else steps + 1
    if n == 1:
        return append_zero(jnp.asarray([sigma_max], dtype=jnp.result_type(float)))
    ramp = jnp.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    _check_levels(sig, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    return append_zero(sig) if final_zero else sig


def log_uniform(
    steps: Count, sigma_min: RealScalar = 0.002, sigma_max: RealScalar = 80.0, *, final_zero: bool = True
) -> Float[Array, " levels"]:
    """Geometric (log-uniform) grid from sigma_max to sigma_min, as the NCSN noise ladder and
    k-diffusion's ``get_sigmas_exponential``; ``final_zero`` as in :func:`karras` (``steps + 1`` entries)."""
    steps = check_count("steps", steps)
    _check_range(sigma_min, sigma_max)
    n = steps if final_zero else steps + 1
    sig = jnp.exp(jnp.linspace(jnp.log(sigma_max), jnp.log(sigma_min), n))
    _check_levels(sig, sigma_min=sigma_min, sigma_max=sigma_max)
    return append_zero(sig) if final_zero else sig


def _check_levels(sig: Array, **numbers: Any) -> None:
    """Concrete levels (before a final 0) must be finite, positive and strictly descending in their dtype:
    numbers that pass their own checks may still not be representable (sigma_min = 1e-30 underflows to 0 in
    float32, sigma_min and sigma_max closer than its resolution, a huge rho). Traced numbers are not checked."""
    if is_traced(sig, *numbers.values()):
        return
    v = np.asarray(sig, dtype=np.float64)
    if np.all(np.isfinite(v)) and np.all(v > 0) and np.all(np.diff(v) < 0):
        return
    given = ", ".join(f"{k}={float(x)!r}" for k, x in numbers.items())
    raise ArgumentError(
        f"{given} give the levels {v.tolist()[:6]} in {sig.dtype}: not finite, positive and strictly descending. "
        f"{sig.dtype} cannot resolve these numbers (a sigma_min too small or too close to sigma_max for its "
        f"precision {float(jnp.finfo(sig.dtype).eps):g}, or an extreme rho); choose others, or use float64."
    )


def uniform_t(
    path: AbstractPath, steps: Count, *, t_min: RealScalar | None = None, t_max: RealScalar | None = None
) -> Float[Array, " levels"]:
    """Path-native grid: times uniform in t from t_max down to t_min, mapped to sigma(t), ending in 0.

    If sigma(t_min) is already 0 (Linear and Cosine paths at t = 0) the ``steps + 1`` times span
    [t_min, t_max]; otherwise ``steps`` times span it and a final 0 is appended (one last denoising step),
    as score_sde does for VP and VE. Either way there are ``levels = steps + 1`` entries. On the Linear and
    Cosine paths the default t_max = 1 gives a first entry of ``inf``: sampling starts from pure noise
    with no truncation. The choice between the two layouts needs concrete t_min and sigma(t_min), so the
    path's numbers and the times must not be traced here.
    """
    if not isinstance(path, AbstractPath):
        raise ArgumentTypeError(f"path must be a gm.paths path (e.g. gm.paths.VP()), got {type(path).__name__}.")
    steps = check_count("steps", steps)
    t_lo = path.t_min if t_min is None else t_min
    t_hi = path.t_max if t_max is None else t_max
    if is_traced(t_lo, t_hi, *jax.tree_util.tree_leaves(path)):
        raise ArgumentError(
            "uniform_t needs a concrete path and concrete t_min / t_max (they decide whether a final 0 is "
            "appended); build the schedule outside jit and pass it in as an array."
        )
    check_number("t_min", t_lo)
    check_number("t_max", t_hi)
    check_less("t_min", t_lo, "t_max", t_hi)
    ends_at_zero = float(path.sigma(t_lo)) == 0.0
    if ends_at_zero:
        grid = path.sigma(jnp.linspace(t_hi, t_lo, steps + 1))
    elif steps == 1:
        grid = append_zero(path.sigma(jnp.asarray([t_hi], dtype=jnp.result_type(float))))
    else:
        grid = append_zero(path.sigma(jnp.linspace(t_hi, t_lo, steps)))
    _check_grid(path, grid, t_lo, t_hi)
    return grid


def _check_grid(path: AbstractPath, grid: Array, t_lo: Any, t_hi: Any) -> None:
    """The grid is a schedule: finite, except a leading inf where the path reaches pure noise (scale(t_max) =
    0: Linear and Cosine at t = 1), non-negative and strictly descending. An inf elsewhere is sigma(t)
    overflowing the dtype (a VP path with beta_max = 178 in float32), which samplers would misread as the
    pure-noise start; negative or ascending levels come from times outside the path's range (t_min < 0)."""
    v = np.asarray(grid, dtype=np.float64)
    what = f"{type(path).__name__}({_numbers(path)})"
    bad = ~np.isfinite(v)
    bad[0] &= not (np.isposinf(v[0]) and float(path.scale(jnp.asarray(t_hi, grid.dtype))) == 0.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ArgumentError(
            f"uniform_t: sigma(t) of {what} is {v[i]} at level {i} of {len(v)}: it overflows {grid.dtype}, so the "
            f"path does not reach pure noise there. Use smaller numbers for the path (e.g. beta_max / sigma_max), "
            f"a smaller t_max, or float64 (jax_enable_x64)."
        )
    with np.errstate(invalid="ignore"):  # inf - inf at a pure-noise start
        ok = np.all(v >= 0) and np.all(np.diff(v[1:]) < 0) and v[0] > v[1]
    if not ok:
        raise ArgumentError(
            f"uniform_t: t_min={float(t_lo):g}, t_max={float(t_hi):g} give sigma(t) = {v.tolist()} on {what}: not "
            f"a descending, non-negative schedule; choose times inside the path's range [{float(path.t_min):g}, "
            f"{float(path.t_max):g}]."
        )


def _numbers(path: AbstractPath) -> str:
    """The path's concrete scalar numbers, e.g. ``beta_min=0.1, beta_max=20``, for messages."""
    return ", ".join(f"{k}={float(a):g}" for k, a in vars(path).items() if np.ndim(a) == 0 and not is_traced(a))
