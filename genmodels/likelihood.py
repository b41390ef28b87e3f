"""Exact likelihoods of diffusion models through the probability-flow ODE, and bits per dimension.

Treat x as the state at sigma_min of the probability-flow ODE dx/dsigma = f(x, sigma) =
(x - D(x, sigma)) / sigma and carry it up to sigma_max. The instantaneous change of variables gives

    log p(x) = log N(x(sigma_max); 0, sigma_max^2 I) + int_{sigma_min}^{sigma_max} div f(x(sigma), sigma) dsigma,

the density the ODE sampler (``gm.samplers.ODE``) actually samples from when it starts at
N(0, sigma_max^2 I): the density of the model at sigma_min, exact up to the solver tolerance. It is solved
as one augmented system (x, delta log p) with diffrax in u = log sigma, where dx/du = x - D and
d delta/du = div_x (x - D) (the same integral: dsigma = sigma du).

The divergence estimator is a value (``trace=``): :class:`ExactTrace` (the trace of the Jacobian from one
forward pass and one Jacobian-vector product per input dimension; for small dimensions) or
:class:`Hutchinson` (the unbiased estimate E_v[v^T J v] with ``num_probes`` probes v per row, drawn once
from ``key`` by a probe value, :class:`Rademacher` or :class:`Gaussian`, and held fixed for the whole
solve, so that the integrand is one smooth ODE). A new estimator is one subclass of
:class:`AbstractTraceEstimator`. :func:`log_prob` returns the log-densities; :func:`log_prob_result`
returns them with the solve's diagnostics in a :class:`LogProbResult`.
"""

from __future__ import annotations

import abc
import functools
import math
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, Shaped

from genmodels._arrays import Count, RealScalar
from genmodels._checks import check_count, check_finite, check_float_dtype, check_key, is_concrete
from genmodels.errors import ArgumentError, ArgumentTypeError, reraise_runtime_checks
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

_FIRST_STEP_FRACTION = 1.0 / 64


# ---- Hutchinson probes and trace estimators: variants are values ---------------------------------------


class AbstractProbe(eqx.Module):
    """A distribution of Hutchinson probes v with E[v v^T] = I, so that E[v^T J v] = tr J."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...], dtype: Any) -> Float[Array, ...]:
        """Probes of ``shape`` and ``dtype``."""


class Rademacher(AbstractProbe):
    """v_i = +-1 with probability 1/2 each (``jax.random.rademacher``): the lowest-variance probe."""

    def sample(self, key, shape, dtype):
        return jax.random.rademacher(key, shape, dtype)


class Gaussian(AbstractProbe):
    """v ~ N(0, I) (``jax.random.normal``)."""

    def sample(self, key, shape, dtype):
        return jax.random.normal(key, shape, dtype)


class AbstractTraceEstimator(eqx.Module):
    """How :func:`log_prob` takes the divergence div_x g = tr(dg/dx) of the field g(x) = x - D(x, sigma).

    The solve evaluates J v for every tangent v of :meth:`tangents` (one Jacobian-vector product each, all
    sharing one linearisation) and combines them with :meth:`divergence`. An estimator holds no arrays
    (it is static under ``jit``); the probes it draws are held fixed for the whole solve, so that the
    integrand is one smooth ODE.
    """

    @abc.abstractmethod
    def tangents(self, key: PRNGKeyArray, x: Float[Array, batch * dims]) -> Float[Array, "n batch *dims"]:
        """The n tangents v, each of x's shape."""

    @abc.abstractmethod
    def divergence(
        self, tangents: Float[Array, "n batch *dims"], jvps: Float[Array, "n batch *dims"]
    ) -> Float[Array, " batch"]:
        """div_x g per row, from the tangents and their products J v."""


class ExactTrace(AbstractTraceEstimator):
    """The exact trace: ``dim`` Jacobian-vector products per evaluation (dim = prod(dims)), with the basis
    vector e_j in every row, so row i of J e_j is column j of row i's Jacobian (a denoiser treats rows
    independently) and tr J = sum_j (J e_j)_j row by row. For small dimensions."""

    def tangents(self, key, x):
        batch, dims = x.shape[0], x.shape[1:]
        d = math.prod(dims)
        eye = jnp.eye(d, dtype=x.dtype)[:, None, :]
        return jnp.broadcast_to(eye, (d, batch, d)).reshape((d, batch) + dims)

    def divergence(self, tangents, jvps):
        d, batch = tangents.shape[0], tangents.shape[1]
        return jnp.einsum("jbj->b", jvps.reshape(d, batch, d))


class Hutchinson(AbstractTraceEstimator):
    """Hutchinson's unbiased estimate tr J ~ mean_k v_k^T J v_k over ``num_probes`` probes per row.

    The probes are drawn once as ``probe.sample(key, (num_probes, *x.shape), x.dtype)`` (so every row gets
    its own) and held fixed for the solve; ``num_probes`` (an int >= 1) sets a shape, so it is static.
    ``probe`` is :class:`Rademacher` (default) or :class:`Gaussian`, or any :class:`AbstractProbe`.
    """

    num_probes: Count = eqx.field(default=1, static=True, converter=functools.partial(check_count, "num_probes"))
    probe: AbstractProbe = Rademacher()

    def __check_init__(self):
        if isinstance(self.probe, str):
            raise ArgumentError(
                f"probe is a value since genmodels 0.2.0: gm.likelihood.Rademacher() or gm.likelihood.Gaussian(), "
                f"not the string {self.probe!r}."
            )
        if not isinstance(self.probe, AbstractProbe):
            raise ArgumentTypeError(
                f"probe must be a gm.likelihood probe (Rademacher() or Gaussian()), got {type(self.probe).__name__}."
            )

    def tangents(self, key, x):
        return self.probe.sample(key, (self.num_probes,) + tuple(x.shape), x.dtype)

    def divergence(self, tangents, jvps):
        n, batch = tangents.shape[0], tangents.shape[1]
        return jnp.mean(jnp.sum((tangents * jvps).reshape(n, batch, -1), axis=-1), axis=0)


class LogProbResult(eqx.Module):
    """The result of a :func:`log_prob_result` solve.

    Attributes:
        log_prob: log p(x) in nats, shape ``(batch,)``; equal to ``prior_log_prob + delta_log_prob``.
        nfe: evaluations of the augmented vector field; each is one forward pass of the model plus
            ``dim`` (:class:`ExactTrace`) or ``num_probes`` (:class:`Hutchinson`) Jacobian-vector products.
        num_steps: diffrax's attempted steps (rejected ones included).
        latent: x(sigma_max), shape ``(batch, *dims)``.
        prior_log_prob: log N(latent; 0, sigma_max^2 I), shape ``(batch,)``.
        delta_log_prob: the divergence integral, shape ``(batch,)``.
    """

    log_prob: Float[Array, " batch"]
    nfe: Int[Array, ""]
    num_steps: Int[Array, ""]
    latent: Float[Array, batch * dims]
    prior_log_prob: Float[Array, " batch"]
    delta_log_prob: Float[Array, " batch"]


def _gaussian_log_prob(z, sigma):
    """log N(z; 0, sigma^2 I) per row of z (batch, *dims)."""
    d = math.prod(z.shape[1:])
    sq = jnp.sum(z.reshape(z.shape[0], -1) ** 2, axis=-1)
    return -0.5 * sq / sigma**2 - 0.5 * d * jnp.log(2 * jnp.pi * sigma**2)


@eqx.filter_jit
def _log_prob(model, x, key, sigma_min, sigma_max, rtol, atol, solver, trace, max_steps):
    dtype = x.dtype
    batch = x.shape[0]
    denoiser = Denoiser(model)
    lo, hi = checked_range(sigma_min, sigma_max, dtype)
    u0, u1 = jnp.log(lo), jnp.log(hi)
    tangents = trace.tangents(key, x)

    def field(u, state, args):
        y, _ = state

        def g(z):
            return z - denoiser(z, jnp.exp(u))

        gy, g_lin = jax.linearize(g, y)
        return gy, trace.divergence(tangents, jax.vmap(g_lin)(tangents))

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
    nfe = solver_nfe(solver, num_steps)
    return LogProbResult(prior + delta, nfe, jnp.asarray(num_steps, jnp.int32), z, prior, delta)


def _check_trace(trace: Any) -> None:
    if isinstance(trace, str):
        raise ArgumentError(
            "trace is a value since genmodels 0.2.0: gm.likelihood.ExactTrace() or "
            f"gm.likelihood.Hutchinson(num_probes, probe), not the string {trace!r}."
        )
    if not isinstance(trace, AbstractTraceEstimator):
        raise ArgumentTypeError(
            "trace must be a gm.likelihood trace estimator (ExactTrace() or Hutchinson(num_probes, probe)), "
            f"got {type(trace).__name__}."
        )


@reraise_runtime_checks
def log_prob_result(
    model: Any,
    x: Shaped[ArrayLike, batch * dims],
    key: PRNGKeyArray,
    *,
    sigma_min: RealScalar = 0.002,
    sigma_max: RealScalar = 80.0,
    trace: AbstractTraceEstimator = ExactTrace(),
    rtol: RealScalar = 1e-5,
    atol: RealScalar = 1e-5,
    solver: dfx.AbstractSolver = dfx.Dopri5(),
    max_steps: Count = 4096,
) -> LogProbResult:
    """:func:`log_prob` with its diagnostics: a :class:`LogProbResult` (log_prob, nfe, num_steps, latent,
    and the prior and divergence terms). Arguments as in :func:`log_prob`."""
    _check_trace(trace)
    check_max_steps(max_steps)
    check_sigma_range(sigma_min, sigma_max)
    check_tolerances(rtol, atol)
    check_solver(solver, sde=False, adaptive=True)
    check_key(key)
    x = jnp.asarray(x)
    check_float_dtype("x", x)
    if x.ndim < 2:
        raise ArgumentError(f"x must have shape (batch, *dims) with at least one data dimension, got {tuple(x.shape)}.")
    if x.size == 0:
        raise ArgumentError(f"x must be non-empty, got shape {tuple(x.shape)}.")
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    x = check_finite("x", x, "log_prob needs finite data")
    numbers = [jnp.asarray(v, dtype=x.dtype) for v in (sigma_min, sigma_max, rtol, atol)]
    return _log_prob(model, x, key, *numbers, solver, trace, max_steps)


def log_prob(
    model: Any,
    x: Shaped[ArrayLike, batch * dims],
    key: PRNGKeyArray,
    *,
    sigma_min: RealScalar = 0.002,
    sigma_max: RealScalar = 80.0,
    trace: AbstractTraceEstimator = ExactTrace(),
    rtol: RealScalar = 1e-5,
    atol: RealScalar = 1e-5,
    solver: dfx.AbstractSolver = dfx.Dopri5(),
    max_steps: Count = 4096,
) -> Float[Array, " batch"]:
    """log p(x) in nats of the diffusion model's probability-flow ODE, one value per row of x.

    One compiled program (``eqx.filter_jit``): x, the key, the model's arrays and the numbers sigma_min,
    sigma_max, rtol, atol are traced, so new data, keys, parameters or tolerances reuse it; x's shape,
    the trace estimator (its ``num_probes`` and probe type), ``max_steps`` and the solver type are static.
    The diagnostics (nfe, steps, latent, the two terms) come from :func:`log_prob_result`. A check that
    fails inside the program (non-finite data under ``jit``, ``max_steps`` exhausted) raises a
    ``gm.errors.RuntimeCheckError``.

    Args:
        model: a denoiser D(x, sigma) or anything ``gm.sample`` accepts as a continuous model.
        x: data of shape ``(batch, *dims)`` (floating, finite), taken as the state at sigma_min.
        key: PRNG key for the Hutchinson probes (see :class:`Hutchinson`); unused by :class:`ExactTrace`.
        sigma_min, sigma_max: the ODE's range; the prior is N(0, sigma_max^2 I).
        trace: the divergence estimator, a value: :class:`ExactTrace` (default; dim Jacobian-vector
            products per evaluation) or :class:`Hutchinson` ``(num_probes, probe)``.
        rtol, atol: PID tolerances of the adaptive solve (on x and on the log-density integral).
        solver: adaptive explicit Runge-Kutta solver from diffrax.
        max_steps: bound on attempted steps; running out raises a runtime error saying so.

    Returns:
        ``(batch,)`` log-densities in nats.
    """
    return log_prob_result(
        model, x, key, sigma_min=sigma_min, sigma_max=sigma_max, trace=trace, rtol=rtol, atol=atol,
        solver=solver, max_steps=max_steps,
    ).log_prob  # fmt: skip


def bits_per_dim(
    log_prob_nats: Float[ArrayLike, "*shape"], num_dims: Count, num_levels: Count = 256, data_range: RealScalar = 2.0
) -> Float[Array, "*shape"]:
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
    num_dims = check_count("num_dims", num_dims)
    num_levels = check_count("num_levels", num_levels, minimum=2)
    if is_concrete(data_range) and not (np.isfinite(data_range) and float(data_range) > 0):
        raise ArgumentError(f"data_range must be a finite number > 0, got {data_range!r}.")
    lp = jnp.asarray(log_prob_nats)
    return (-lp + num_dims * jnp.log(num_levels / jnp.asarray(data_range, lp.dtype))) / (num_dims * math.log(2.0))


def dequantize(
    key: PRNGKeyArray,
    x_int: Shaped[ArrayLike, "*shape"],
    num_levels: Count = 256,
    low: RealScalar = -1.0,
    high: RealScalar = 1.0,
) -> Float[Array, "*shape"]:
    """Uniform dequantisation: y = (x_int + u) / num_levels * (high - low) + low, u ~ U[0, 1) per entry.

    Integers 0..num_levels-1 become continuous data on [low, high); bin k is
    [low + k w, low + (k + 1) w) with w = (high - low) / num_levels, so a density p(y) on the bins gives
    P(x_int) ~ p(y) w^D and :func:`bits_per_dim` with ``data_range = high - low`` converts log p(y).
    """
    x_int = jnp.asarray(x_int)
    if not jnp.issubdtype(x_int.dtype, jnp.integer):
        raise ArgumentTypeError(f"x_int must have an integer dtype (values 0..num_levels-1), got {x_int.dtype}.")
    num_levels = check_count("num_levels", num_levels, minimum=2)
    if is_concrete(low) and is_concrete(high) and not float(low) < float(high):
        raise ArgumentError(f"need low < high, got low={low}, high={high}.")
    if is_concrete(x_int) and x_int.size and (int(x_int.min()) < 0 or int(x_int.max()) >= num_levels):
        raise ArgumentError(
            f"x_int values must lie in [0, {num_levels - 1}], got range [{int(x_int.min())}, {int(x_int.max())}]."
        )
    dtype = jnp.result_type(float)
    u = jax.random.uniform(key, x_int.shape, dtype)
    return (x_int.astype(dtype) + u) / num_levels * (high - low) + low
