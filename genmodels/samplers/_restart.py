"""Restart sampling (Xu et al. 2023): Heun's ODE steps with restarts that re-noise and re-solve an interval."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from genmodels._checks import check_count, check_positive, is_concrete
from genmodels.errors import ArgumentError
from genmodels.samplers._base import AbstractStepSampler, float_param, known_to_be, unit_cost


def _heun(denoiser, x: Array, sigma, sigma_next) -> Array:
    """One deterministic Heun step (EDM Algorithm 1); an Euler step when sigma_next = 0."""
    d = (x - denoiser(x, sigma)) / sigma
    x_euler = x + (sigma_next - sigma) * d

    def correct(x_euler):
        d_next = (x_euler - denoiser(x_euler, sigma_next)) / sigma_next
        return x + (sigma_next - sigma) * 0.5 * (d + d_next)

    return jax.lax.cond(sigma_next > 0, correct, lambda x_euler: x_euler, x_euler)


def _heun_calls(sigma, sigma_next, evaluations) -> Int[Array, ""]:
    second = jnp.where(sigma_next > 0, evaluations(jnp.where(sigma_next > 0, sigma_next, sigma)), 0)
    return evaluations(sigma) + second


class Restart(AbstractStepSampler):
    """Restart sampling (Xu et al. 2023, Algorithm 1) with EDM's Heun ODE steps. Stochastic.

    The main loop takes deterministic Heun steps down ``sigmas``. The restart interval is
    [sigma_j, t_max], with j the schedule index nearest to ``t_min`` (as the reference code rounds it); after
    the main step that reaches sigma_j, the sampler ``restarts`` times

    1. adds noise forward to t_max: x <- x + s_noise sqrt(t_max^2 - sigma_j^2) z, z ~ N(0, I) (the exact
       forward kernel of the variance-exploding process from sigma_j to t_max when s_noise = 1);
    2. solves back to sigma_j with ``restart_steps`` Heun steps on the Karras grid
       (t_max^(1/rho) + k / restart_steps (sigma_j^(1/rho) - t_max^(1/rho)))^rho, k = 0..restart_steps.

    The forward noise contracts the errors accumulated above sigma_j (the paper's argument: the
    stochastic forward-backward pass reduces the Wasserstein error of the ODE's accumulated error), at
    2 restart_steps model calls per restart (restart_steps * 2 - 1 when sigma_j = 0).

    Defaults are the reference's CIFAR-10 EDM configuration (``benchmarks/params_cifar10_edm.txt`` in
    Newbeeer/diffusion_restart_sampling: 18 main steps, ``{"0": [3, 2, 0.14, 0.30]}``: 3 grid points =
    2 inner Heun steps, K = 2 restarts, interval [0.14, 0.30]; NFE 35 + 8 = 43 with ``karras(18)``), with
    the paper's exact re-noising. The reference script's command line also sets S_noise = 1.003 and a
    churn of 0.05 in the inner steps (``restart_gamma``), heuristics for trained networks: ``s_noise``
    sets the first, the second is not offered.

    The restart happens inside the one-scan loop as a ``lax.cond`` on whether step i lands on sigma_j (a
    traced comparison, so new numbers never recompile); ``restarts`` and ``restart_steps`` set loop
    lengths and are static. ``order`` is ``None`` (the restarts are no fixed SDE discretisation; with
    ``restarts=0`` it is Heun's 2); not ``deterministic`` unless ``restarts=0`` or ``s_noise=0``.

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        t_min, t_max: 0 < t_min < t_max, the restart interval (t_min is rounded to the nearest schedule
            entry; no restart when that entry is not below t_max).
        restarts: K >= 0 (static), the number of restarts.
        restart_steps: >= 1 (static), Heun steps per backward pass.
        s_noise: >= 0, scale of the restart noise.
        rho: > 0, the Karras exponent of the inner grid (EDM's 7).
    """

    t_min: Float[Array, ""] = eqx.field(default=0.14, converter=float_param)
    t_max: Float[Array, ""] = eqx.field(default=0.30, converter=float_param)
    restarts: int = eqx.field(default=2, static=True)
    restart_steps: int = eqx.field(default=2, static=True)
    s_noise: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)
    rho: Float[Array, ""] = eqx.field(default=7.0, converter=float_param)

    def __check_init__(self):
        check_positive("t_min", self.t_min)
        check_positive("t_max", self.t_max)
        check_positive("s_noise", self.s_noise, allow_zero=True)
        check_positive("rho", self.rho)
        check_count("restarts", self.restarts, minimum=0)
        check_count("restart_steps", self.restart_steps, minimum=1)
        if is_concrete(self.t_min) and is_concrete(self.t_max) and not float(self.t_min) < float(self.t_max):
            raise ArgumentError(
                f"need t_min < t_max (the restart interval), got t_min={float(self.t_min)} and "
                f"t_max={float(self.t_max)}."
            )

    @property
    def order(self) -> int | None:
        return 2 if self.restarts == 0 else None

    @property
    def deterministic(self) -> bool:
        return self.restarts == 0 or known_to_be(self.s_noise, 0)

    def restart_index(self) -> Int[Array, ""]:
        """j, the schedule index nearest to t_min among the finite, positive levels (never an inf start, and
        never the final 0: restarting the clean sample would re-noise the result and end on two inner Heun
        steps instead of the schedule)."""
        usable = jnp.isfinite(self.sigmas) & (self.sigmas > 0)
        gap = jnp.abs(jnp.where(usable, self.sigmas, jnp.inf) - self.t_min)
        return jnp.argmin(gap).astype(jnp.int32)

    def _restarts_after(self, i) -> tuple[Array, Array]:
        """(whether step i carries the restarts, the inner grid from t_max down to sigma_j)."""
        j = self.restart_index()
        sigma_j = self.sigmas[j]
        carries = (i + 1 == j) & (sigma_j < self.t_max) & (self.restarts > 0)
        ramp = jnp.asarray(np.linspace(0.0, 1.0, self.restart_steps + 1), self.sigmas.dtype)
        lo, hi = sigma_j ** (1.0 / self.rho), self.t_max ** (1.0 / self.rho)
        inner = (hi + ramp * (lo - hi)) ** self.rho
        return carries, inner.at[-1].set(sigma_j)

    def step(self, denoiser, i, x, state, key):
        x = _heun(denoiser, x, self.sigmas[i], self.sigmas[i + 1])
        carries, inner = self._restarts_after(i)
        scale = self.s_noise * jnp.sqrt(jnp.maximum(inner[0] ** 2 - inner[-1] ** 2, 0.0))

        def restart(x):
            def one(k, x):
                x = x + scale.astype(x.dtype) * jax.random.normal(jax.random.fold_in(key, k), x.shape, x.dtype)
                return jax.lax.fori_loop(
                    0, self.restart_steps, lambda m, x: _heun(denoiser, x, inner[m], inner[m + 1]), x
                )

            return jax.lax.fori_loop(0, self.restarts, one, x)

        return jax.lax.cond(carries, restart, lambda x: x, x), state

    def step_nfe(self, i, evaluations=unit_cost):
        main = _heun_calls(self.sigmas[i], self.sigmas[i + 1], evaluations)
        carries, inner = self._restarts_after(i)
        per_pass = sum(_heun_calls(inner[m], inner[m + 1], evaluations) for m in range(self.restart_steps))
        return (main + jnp.where(carries, self.restarts * per_pass, 0)).astype(jnp.int32)
