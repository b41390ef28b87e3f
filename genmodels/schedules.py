"""Noise schedules: descending sigma arrays, in the k-diffusion convention.

A schedule for ``steps`` sampler steps has ``steps + 1`` entries, strictly descending, and (by default)
ends in 0 so that the sampler returns a clean sample. A schedule that ends at some sigma_min > 0 makes
the samplers return x at sigma_min. Every sampler takes its schedule as its first argument.

All builders take ``steps`` as a Python int (it fixes an array length, so it is static) and the numeric
endpoints as numbers, so the same grid can be rebuilt inside ``jit`` with traced endpoints.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels.paths import AbstractPath


def _check_steps(steps) -> int:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a Python int >= 1 (it fixes the schedule's length), got {steps!r}.")
    return steps


def _check_range(sigma_min, sigma_max) -> None:
    try:
        lo, hi = float(sigma_min), float(sigma_max)
    except TypeError:  # traced inside jit: checked by the samplers
        return
    if not (0 < lo < hi):
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={lo}, sigma_max={hi}.")


def append_zero(sigmas: Float[Array, " n"]) -> Float[Array, " n+1"]:
    """Append a final 0 so that the sampler ends on a clean sample."""
    sigmas = jnp.asarray(sigmas)
    return jnp.concatenate([sigmas, jnp.zeros((1,), sigmas.dtype)])


def karras(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0, *, final_zero: bool = True
) -> Float[Array, " steps+1"]:
    """EDM grid (Karras et al. 2022, Eq. 5): sigma_i = (max^(1/rho) + i/(N-1) (min^(1/rho) - max^(1/rho)))^rho.

    With ``final_zero`` (default) the ``steps`` levels from sigma_max to sigma_min are followed by 0,
    exactly as k-diffusion's ``get_sigmas_karras(steps, ...)``; without it, ``steps + 1`` levels from
    sigma_max to sigma_min.
    """
    steps = _check_steps(steps)
    _check_range(sigma_min, sigma_max)
    n = steps if final_zero else steps + 1
    if n == 1:
        return append_zero(jnp.asarray([sigma_max], dtype=jnp.result_type(float)))
    ramp = jnp.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    return append_zero(sig) if final_zero else sig


def log_uniform(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, *, final_zero: bool = True
) -> Float[Array, " steps+1"]:
    """Geometric (log-uniform) grid from sigma_max to sigma_min, as the NCSN noise ladder and
    k-diffusion's ``get_sigmas_exponential``; ``final_zero`` as in :func:`karras`."""
    steps = _check_steps(steps)
    _check_range(sigma_min, sigma_max)
    n = steps if final_zero else steps + 1
    sig = jnp.exp(jnp.linspace(jnp.log(sigma_max), jnp.log(sigma_min), n))
    return append_zero(sig) if final_zero else sig


def uniform_t(
    path: AbstractPath, steps: int, *, t_min: float | None = None, t_max: float | None = None
) -> Float[Array, " steps+1"]:
    """Path-native grid: times uniform in t from t_max down to t_min, mapped to sigma(t), ending in 0.

    If sigma(t_min) is already 0 (Linear and Cosine paths at t = 0) the ``steps + 1`` times span
    [t_min, t_max]; otherwise ``steps`` times span it and a final 0 is appended (one last denoising step),
    as score_sde does for VP and VE. On the Linear and Cosine paths the default t_max = 1 gives a first
    entry of ``inf``: sampling starts from pure noise with no truncation.
    """
    steps = _check_steps(steps)
    t_lo = path.t_min if t_min is None else t_min
    t_hi = path.t_max if t_max is None else t_max
    try:
        if not float(t_lo) < float(t_hi):
            raise ValueError(f"need t_min < t_max, got t_min={float(t_lo)}, t_max={float(t_hi)}.")
        ends_at_zero = float(path.sigma(t_lo)) == 0.0
    except TypeError as err:  # traced times: the structure must still be static
        raise ValueError("uniform_t needs concrete t_min / t_max (they decide whether a final 0 is appended).") from err
    if ends_at_zero:
        return path.sigma(jnp.linspace(t_hi, t_lo, steps + 1))
    if steps == 1:
        return append_zero(path.sigma(jnp.asarray([t_hi], dtype=jnp.result_type(float))))
    return append_zero(path.sigma(jnp.linspace(t_hi, t_lo, steps)))
