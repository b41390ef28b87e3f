"""Schedules fitted to a sampler: the noise levels on which a sampler, at a fixed budget of model
evaluations, lands closest to the exact probability-flow solution from the same noise.

The samplers are compared with a reference solution: an accurate adaptive solve (``gm.samplers.ODE``,
Dopri5 at a tight tolerance) from sigma_max down to sigma_min, followed by the same final step every
fixed-step schedule ends with (sigma_min -> 0: x -> D(x, sigma_min)). For an exact denoiser (the analytic
targets) the error minimised is then the sampler's own discretisation error, exactly.

The schedule keeps its end points (sigma_max, sigma_min, then 0) and moves its interior levels:
log sigma_i = log sigma_max - (log sigma_max - log sigma_min) sum_{j<i} softmax(theta)_j, a smooth,
monotone parameterisation started at ``karras(rho=7)``. ``fit`` minimises the mean squared end-point
error over one batch of noise by Adam on theta, differentiating through the whole sampler (one compiled
program: ``lax.scan`` over the iterations), and returns the best schedule seen. This is the spirit of GITS
(Chen et al. 2024), which searches a coarse grid by dynamic programming on the same error; here the search is
gradient-based and continuous.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from genmodels._checks import check_count, check_key
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.samplers._adaptive import ODE
from genmodels.samplers._base import AbstractStepSampler
from genmodels.samplers._denoiser import Denoiser
from genmodels.schedules._grids import append_zero, karras


class ScheduleFit(eqx.Module):
    """What :func:`fit` returns.

    Attributes:
        sigmas: the fitted schedule, ``steps + 1`` entries (sigma_max, ..., sigma_min, 0).
        steps: the sampler's step count at this budget.
        nfe: the model evaluations the sampler spends on it (at most the requested budget).
        initial_error, final_error: RMS end-point error (per coordinate) on the fitting noise, on
            ``karras(steps, sigma_min, sigma_max, rho=7)`` and on the fitted schedule.
    """

    sigmas: Float[Array, " levels"]
    steps: int = eqx.field(static=True)
    nfe: int = eqx.field(static=True)
    initial_error: Float[Array, ""]
    final_error: Float[Array, ""]


def sampler_nfe(sampler: AbstractStepSampler) -> int:
    """Model evaluations ``sampler`` spends on its schedule (read off ``step_nfe``; concrete schedules only)."""
    if not isinstance(sampler, AbstractStepSampler):
        raise ArgumentTypeError(f"sampler must be a fixed-step sampler (gm.samplers), got {type(sampler).__name__}.")
    first = int(sampler.start_at_infinity)
    return first + sum(int(sampler.step_nfe(jnp.asarray(i))) for i in range(first, sampler.num_steps))


def steps_for_nfe(sampler_factory: Callable[[Array], AbstractStepSampler], nfe: int, **karras_kwargs: Any) -> int:
    """The largest step count whose sampler ``sampler_factory(karras(steps, ...))`` spends at most ``nfe``
    model evaluations. Raises ``ArgumentError`` naming ``nfe`` when even one step costs more."""
    nfe = check_count("nfe", nfe)
    best = None
    for steps in range(1, nfe + 1):  # NFE grows with the step count for every sampler here
        if sampler_nfe(sampler_factory(karras(steps, **karras_kwargs))) <= nfe:
            best = steps
        else:
            break
    if best is None:
        cost = sampler_nfe(sampler_factory(karras(1, **karras_kwargs)))
        raise ArgumentError(f"nfe={nfe} is below the sampler's cheapest schedule (one step costs {cost} evaluations).")
    return best


@eqx.filter_jit
def reference_endpoint(
    model: Any, noise: Float[Array, "batch ..."], sigma_min: float, sigma_max: float, rtol: float = 1e-7
) -> Float[Array, "batch ..."]:
    """The exact-solution stand-in from ``sigma_max * noise``: an adaptive Dopri5 solve to sigma_min at
    ``rtol`` (= atol), then the final step to 0, x -> D(x, sigma_min)."""
    ode = ODE(sigma_max=sigma_max, sigma_min=sigma_min, rtol=rtol, atol=rtol, max_steps=4096)
    x = ode.integrate(Denoiser(model), noise, jax.random.key(0), False).samples
    return Denoiser(model)(x, jnp.asarray(sigma_min, x.dtype))


@eqx.filter_jit
def endpoint_error(
    sampler: AbstractStepSampler, model: Any, noise: Array, reference: Array, key: PRNGKeyArray
) -> Array:
    """RMS error per coordinate of ``sampler``'s samples from ``noise`` against ``reference`` (traceable and
    differentiable in the sampler's numbers)."""
    x = sampler.integrate(Denoiser(model), noise, key, False).samples
    return jnp.sqrt(jnp.mean((x - reference) ** 2))


def _schedule(theta: Array, log_hi: Array, log_lo: Array) -> Array:
    """sigma_max, ..., sigma_min (len(theta) + 2 levels, log-spaced by softmax(theta)) followed by 0."""
    frac = jnp.concatenate([jnp.zeros((1,), theta.dtype), jnp.cumsum(jax.nn.softmax(theta))])
    frac = frac.at[-1].set(1.0)  # exactly sigma_min at the end
    return append_zero(jnp.exp(log_hi - (log_hi - log_lo) * frac))


@eqx.filter_jit
def _optimise(model, sampler_factory, noise, reference, key, theta0, log_hi, log_lo, iterations, learning_rate):
    def loss(theta):
        return endpoint_error(sampler_factory(_schedule(theta, log_hi, log_lo)), model, noise, reference, key)

    opt = optax.adam(learning_rate)
    value_and_grad = jax.value_and_grad(loss)

    def body(carry, _):
        theta, opt_state, best_theta, best = carry
        value, grad = value_and_grad(theta)
        ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
        better = ok & (value < best)
        best_theta, best = jnp.where(better, theta, best_theta), jnp.where(better, value, best)
        updates, new_state = opt.update(jnp.where(ok, grad, 0.0), opt_state, theta)
        return (optax.apply_updates(theta, updates), new_state, best_theta, best), value

    initial = loss(theta0)
    carry = (theta0, opt.init(theta0), theta0, jnp.where(jnp.isfinite(initial), initial, jnp.inf))
    (theta, _, best_theta, best), _ = jax.lax.scan(body, carry, None, length=iterations)
    last = loss(theta)
    use_last = jnp.isfinite(last) & (last < best)
    return jnp.where(use_last, theta, best_theta), initial, jnp.where(use_last, last, best)


def fit(
    model: Any,
    sampler_factory: Callable[[Array], AbstractStepSampler],
    nfe: int,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    iterations: int = 300,
    learning_rate: float = 0.05,
    rtol: float = 1e-7,
) -> ScheduleFit:
    """The schedule on which ``sampler_factory(sigmas)`` spends at most ``nfe`` model evaluations and ends
    closest (RMS) to the accurate solution from the same noise (see the module docstring).

    Args:
        model: a denoiser model (anything ``gm.sample`` takes).
        sampler_factory: ``sigmas -> sampler``, e.g. ``gm.samplers.DPMSolverPP2M`` or
            ``lambda s: gm.samplers.UniPC(s, order=2)``; called on traced schedules (a sampler whose first
            level is finite).
        nfe: the evaluation budget (int >= 1); the step count is the largest that fits (:func:`steps_for_nfe`).
        key: PRNG key for the fitting noise (and for a stochastic sampler's draws, held fixed while fitting).
        shape: shape of the fitting batch, e.g. (256, 64).
        sigma_min, sigma_max: the schedule's end points, kept fixed.
        iterations: Adam iterations (static); learning_rate: Adam's step on the softmax logits.
        rtol: tolerance of the reference solve.

    Returns:
        a :class:`ScheduleFit`; evaluate the schedule on other noise with :func:`endpoint_error` and
        :func:`reference_endpoint`.
    """
    check_key(key)
    iterations = check_count("iterations", iterations)
    if not callable(sampler_factory):
        raise ArgumentTypeError(f"sampler_factory must be a callable sigmas -> sampler, got {sampler_factory!r}.")
    steps = steps_for_nfe(sampler_factory, nfe, sigma_min=sigma_min, sigma_max=sigma_max)
    init = karras(steps, sigma_min, sigma_max)
    used = sampler_nfe(sampler_factory(init))
    key_noise, key_run = jax.random.split(key)
    noise = jax.random.normal(key_noise, tuple(shape), dtype=init.dtype)
    reference = reference_endpoint(model, noise, sigma_min, sigma_max, rtol)
    if steps < 3:  # at most one interval between sigma_max and sigma_min: nothing to move
        err = endpoint_error(sampler_factory(init), model, noise, reference, key_run)
        return ScheduleFit(init, steps, used, err, err)
    log_levels = jnp.log(init[:-1])
    theta0 = jnp.log(-jnp.diff(log_levels) / (log_levels[0] - log_levels[-1]))
    theta, initial, final = _optimise(
        model, sampler_factory, noise, reference, key_run, theta0, log_levels[0], log_levels[-1], iterations,
        jnp.asarray(learning_rate, init.dtype),
    )  # fmt: skip
    sigmas = _schedule(theta, log_levels[0], log_levels[-1])
    if not bool(np.all(np.diff(np.asarray(sigmas)) < 0)):
        sigmas, final = init, initial  # levels merged in the dtype: keep the starting schedule
    return ScheduleFit(sigmas, steps, used, initial, final)
