"""Exact likelihoods of diffusion models through the probability-flow ODE, and bits per dimension.

Treat x as the state at sigma_min of the probability-flow ODE dx/dsigma = f(x, sigma) =
(x - D(x, sigma)) / sigma and carry it up to sigma_max. The instantaneous change of variables gives

    log p(x) = log N(x(sigma_max); 0, sigma_max^2 I) + int_{sigma_min}^{sigma_max} div f(x(sigma), sigma) dsigma,

the density the ODE sampler (``gm.samplers.ODE``) actually samples from when it starts at
N(0, sigma_max^2 I): the density of the model at sigma_min, exact up to the solver tolerance. It is solved
as one augmented system (x, delta log p) with diffrax in u = log sigma, where dx/du = x - D and
d delta/du = div_x (x - D) (the same integral: dsigma = sigma du).

The divergence is either exact (the trace of the Jacobian from one forward pass and one Jacobian-vector
product per input dimension; for small dimensions) or Hutchinson's unbiased estimate
E_v[v^T J v] with probes v (Rademacher or Gaussian) drawn once from ``key`` and held fixed for the whole
solve, so that the integrand is one smooth ODE; ``num_probes`` probes are averaged.
"""

from __future__ import annotations

import math
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from genmodels._checks import check_finite, check_float_dtype, check_known, is_concrete
from genmodels.samplers._adaptive import (
    check_max_steps,
    check_sigma_range,
    check_solver,
    check_tolerances,
    checked_range,
    fsal_state,
    raise_if_failed,
    solver_nfe,
)
from genmodels.samplers._base import Denoiser
from genmodels.samplers._driver import _check_key

_FIRST_STEP_FRACTION = 1.0 / 64


class LogProbStats(eqx.Module):
    """Diagnostics of a :func:`log_prob` solve.

    Attributes:
        nfe: evaluations of the augmented vector field; each is one forward pass of the model plus
            ``dim`` (exact trace) or ``num_probes`` (Hutchinson) Jacobian-vector products.
        num_steps: diffrax's attempted steps (rejected ones included).
        latent: x(sigma_max), shape ``(batch, *dims)``.
        prior_log_prob: log N(latent; 0, sigma_max^2 I), shape ``(batch,)``.
        delta_log_prob: the divergence integral, shape ``(batch,)``; log_prob = prior + delta.
    """

    nfe: Int[Array, ""]
    num_steps: Int[Array, ""]
    latent: Array
    prior_log_prob: Float[Array, " batch"]
    delta_log_prob: Float[Array, " batch"]


def _gaussian_log_prob(z, sigma):
    """log N(z; 0, sigma^2 I) per row of z (batch, *dims)."""
    d = math.prod(z.shape[1:])
    sq = jnp.sum(z.reshape(z.shape[0], -1) ** 2, axis=-1)
    return -0.5 * sq / sigma**2 - 0.5 * d * jnp.log(2 * jnp.pi * sigma**2)


def _probes(key, shape, num_probes, probe, dtype):
    full = (num_probes,) + tuple(shape)
    if probe == "rademacher":
        return jax.random.rademacher(key, full, dtype)
    return jax.random.normal(key, full, dtype)


@eqx.filter_jit
def _log_prob(model, x, key, sigma_min, sigma_max, rtol, atol, solver, trace, num_probes, probe, max_steps):
    dtype = x.dtype
    batch, dims = x.shape[0], x.shape[1:]
    d = math.prod(dims)
    denoiser = Denoiser(model)
    lo, hi = checked_range(sigma_min, sigma_max, dtype)
    u0, u1 = jnp.log(lo), jnp.log(hi)

    if trace == "exact":
        # the same basis vector e_j in every row: row i of J e_j is column j of row i's Jacobian
        # (a denoiser treats rows independently), so diag entries come out row by row.
        tangents = jnp.broadcast_to(jnp.eye(d, dtype=dtype)[:, None, :], (d, batch, d)).reshape((d, batch) + dims)
    else:
        tangents = _probes(key, x.shape, num_probes, probe, dtype)

    def field(u, state, args):
        y, _ = state

        def g(z):
            return z - denoiser(z, jnp.exp(u))

        gy, g_lin = jax.linearize(g, y)
        jv = jax.vmap(g_lin)(tangents)  # (n, batch, *dims)
        if trace == "exact":
            div = jnp.einsum("jbj->b", jv.reshape(d, batch, d))
        else:
            div = jnp.mean(jnp.sum((tangents * jv).reshape(num_probes, batch, d), axis=-1), axis=0)
        return gy, div

    term, y0 = dfx.ODETerm(field), (x, jnp.zeros((batch,), dtype))
    sol = dfx.diffeqsolve(
        term,
        solver,
        u0,
        u1,
        (u1 - u0) * _FIRST_STEP_FRACTION,
        y0,
        stepsize_controller=dfx.PIDController(rtol=rtol.astype(dtype), atol=atol.astype(dtype)),
        max_steps=max_steps,
        throw=False,
        solver_state=fsal_state(solver, term, u0, y0),
    )
    z, delta = raise_if_failed(sol.ys, sol, "gm.log_prob", max_steps)
    z, delta = z[-1], delta[-1]
    prior = _gaussian_log_prob(z, hi)
    num_steps = sol.stats["num_steps"]
    stats = LogProbStats(solver_nfe(solver, num_steps), jnp.asarray(num_steps, jnp.int32), z, prior, delta)
    return prior + delta, stats


def log_prob(
    model: Any,
    x: Float[Array, "batch *dims"],
    key: PRNGKeyArray,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    trace: str = "exact",
    num_probes: int = 1,
    probe: str = "rademacher",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    solver: dfx.AbstractSolver = dfx.Dopri5(),
    max_steps: int = 4096,
    return_stats: bool = False,
) -> Float[Array, " batch"] | tuple[Float[Array, " batch"], LogProbStats]:
    """log p(x) in nats of the diffusion model's probability-flow ODE, one value per row of x.

    One compiled program (``eqx.filter_jit``): x, the key, the model's arrays and the numbers sigma_min,
    sigma_max, rtol, atol are traced, so new data, keys, parameters or tolerances reuse it; x's shape,
    ``trace``, ``num_probes``, ``probe``, ``max_steps`` and the solver type are static.

    Args:
        model: a denoiser D(x, sigma) or anything ``gm.sample`` accepts as a continuous model.
        x: data of shape ``(batch, *dims)`` (floating, finite), taken as the state at sigma_min.
        key: PRNG key for the Hutchinson probes, drawn once as
            ``jax.random.rademacher(key, (num_probes, *x.shape))`` (or ``jax.random.normal``), so every
            row gets its own probes; unused with ``trace="exact"``.
        sigma_min, sigma_max: the ODE's range; the prior is N(0, sigma_max^2 I).
        trace: ``"exact"`` (dim Jacobian-vector products per evaluation) or ``"hutchinson"``.
        num_probes: Hutchinson probes averaged per evaluation (>= 1).
        probe: ``"rademacher"`` or ``"gaussian"`` probes.
        rtol, atol: PID tolerances of the adaptive solve (on x and on the log-density integral).
        solver: adaptive explicit Runge-Kutta solver from diffrax.
        max_steps: bound on attempted steps; running out raises a runtime error saying so.
        return_stats: also return a :class:`LogProbStats` (nfe, steps, latent, the two terms).

    Returns:
        ``(batch,)`` log-densities in nats, or ``(log_prob, stats)``.
    """
    check_known("trace", trace, ("exact", "hutchinson"))
    check_known("probe", probe, ("rademacher", "gaussian"))
    if not isinstance(num_probes, int) or isinstance(num_probes, bool) or num_probes < 1:
        raise ValueError(f"num_probes must be a Python int >= 1, got {num_probes!r}.")
    check_max_steps(max_steps)
    check_sigma_range(sigma_min, sigma_max)
    check_tolerances(rtol, atol)
    check_solver(solver, sde=False, adaptive=True)
    if not isinstance(return_stats, bool):
        raise TypeError(f"return_stats must be a bool, got {return_stats!r}.")
    _check_key(key)
    x = jnp.asarray(x)
    check_float_dtype("x", x)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (batch, *dims) with at least one data dimension, got {tuple(x.shape)}.")
    if x.size == 0:
        raise ValueError(f"x must be non-empty, got shape {tuple(x.shape)}.")
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    x = check_finite("x", x, "log_prob needs finite data")
    numbers = [jnp.asarray(v, dtype=x.dtype) for v in (sigma_min, sigma_max, rtol, atol)]
    lp, stats = _log_prob(model, x, key, *numbers, solver, trace, num_probes, probe, max_steps)
    return (lp, stats) if return_stats else lp


def bits_per_dim(log_prob_nats: Array, num_dims: int, num_levels: int = 256, data_range: float = 2.0) -> Array:
    """Bits per dimension of discrete data from a continuous log-density of its dequantised version.

    With data on ``num_levels`` levels mapped to an interval of length ``data_range`` (see
    :func:`dequantize`), each discrete value owns a bin of width data_range / num_levels, so
    -log2 P(x_int) ~ -(log p(y) + D log(data_range / num_levels)) / ln 2 and

        bpd = (-log_prob + D log(num_levels / data_range)) / (D ln 2).

    Args:
        log_prob_nats: log p(y) in nats (any shape).
        num_dims: D, the number of dimensions per example.
        num_levels: discrete levels per dimension (256 for 8-bit images).
        data_range: length of the interval the levels are mapped to (2 for [-1, 1]).
    """
    if not isinstance(num_dims, int) or isinstance(num_dims, bool) or num_dims < 1:
        raise ValueError(f"num_dims must be a Python int >= 1, got {num_dims!r}.")
    if not isinstance(num_levels, int) or isinstance(num_levels, bool) or num_levels < 2:
        raise ValueError(f"num_levels must be a Python int >= 2, got {num_levels!r}.")
    if is_concrete(data_range) and not (np.isfinite(data_range) and float(data_range) > 0):
        raise ValueError(f"data_range must be a finite number > 0, got {data_range!r}.")
    lp = jnp.asarray(log_prob_nats)
    return (-lp + num_dims * jnp.log(num_levels / jnp.asarray(data_range, lp.dtype))) / (num_dims * math.log(2.0))


def dequantize(
    key: PRNGKeyArray, x_int: Array, num_levels: int = 256, low: float = -1.0, high: float = 1.0
) -> Float[Array, "..."]:
    """Uniform dequantisation: y = (x_int + u) / num_levels * (high - low) + low, u ~ U[0, 1) per entry.

    Integers 0..num_levels-1 become continuous data on [low, high); bin k is
    [low + k w, low + (k + 1) w) with w = (high - low) / num_levels, so a density p(y) on the bins gives
    P(x_int) ~ p(y) w^D and :func:`bits_per_dim` with ``data_range = high - low`` converts log p(y).
    """
    x_int = jnp.asarray(x_int)
    if not jnp.issubdtype(x_int.dtype, jnp.integer):
        raise TypeError(f"x_int must have an integer dtype (values 0..num_levels-1), got {x_int.dtype}.")
    if not isinstance(num_levels, int) or isinstance(num_levels, bool) or num_levels < 2:
        raise ValueError(f"num_levels must be a Python int >= 2, got {num_levels!r}.")
    if is_concrete(low) and is_concrete(high) and not float(low) < float(high):
        raise ValueError(f"need low < high, got low={low}, high={high}.")
    if is_concrete(x_int) and x_int.size and (int(x_int.min()) < 0 or int(x_int.max()) >= num_levels):
        raise ValueError(
            f"x_int values must lie in [0, {num_levels - 1}], got range [{int(x_int.min())}, {int(x_int.max())}]."
        )
    dtype = jnp.result_type(float)
    u = jax.random.uniform(key, x_int.shape, dtype)
    return (x_int.astype(dtype) + u) / num_levels * (high - low) + low
