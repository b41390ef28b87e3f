"""Heun's second-order sampler with optional churn (Karras et al. 2022, Algorithms 1 and 2)."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genmodels._checks import check_positive, is_concrete
from genmodels.errors import ArgumentError
from genmodels.samplers._base import AbstractStepSampler, float_param, known_to_be, unit_cost


class Heun(AbstractStepSampler):
    """EDM's stochastic Heun sampler; with ``s_churn = 0`` (default) the deterministic Algorithm 1.

    Per step, gamma = min(s_churn / N, sqrt(2) - 1) if s_tmin <= sigma_i <= s_tmax else 0; the state is
    first lifted to sigma_hat = sigma_i (1 + gamma) with fresh noise of std
    s_noise sqrt(sigma_hat^2 - sigma_i^2), then an Euler step to sigma_{i+1} is corrected by the
    trapezoidal rule unless sigma_{i+1} = 0. NFE = 2 steps - 1 on a schedule ending in 0. A step with
    gamma = 0 draws no random numbers.

    Deterministic with ``s_churn = 0`` (order 2) or ``s_noise = 0``; with churn the sampler is stochastic
    and has no stated order (the churn fades as 1 / N but is not a fixed SDE).

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        s_churn: >= 0, total churn (EDM's S_churn).
        s_tmin, s_tmax: 0 <= s_tmin <= s_tmax (s_tmax may be inf), the sigma range where churn applies.
        s_noise: >= 0, scale of the churn noise (EDM's S_noise).
    """

    s_churn: Float[Array, ""] = eqx.field(default=0.0, converter=float_param)
    s_tmin: Float[Array, ""] = eqx.field(default=0.0, converter=float_param)
    s_tmax: Float[Array, ""] = eqx.field(default=math.inf, converter=float_param)
    s_noise: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)

    def __check_init__(self):
        check_positive("s_churn", self.s_churn, allow_zero=True)
        check_positive("s_tmin", self.s_tmin, allow_zero=True)
        check_positive("s_noise", self.s_noise, allow_zero=True)
        if is_concrete(self.s_tmax) and not np.all(np.isposinf(np.asarray(self.s_tmax))):
            check_positive("s_tmax", self.s_tmax, allow_zero=True)
            if is_concrete(self.s_tmin) and float(self.s_tmin) > float(self.s_tmax):
                raise ArgumentError(
                    f"need s_tmin <= s_tmax (the sigma range where churn applies), got s_tmin={float(self.s_tmin)}"
                    f" and s_tmax={float(self.s_tmax)}."
                )

    @property
    def order(self) -> int | None:
        return 2 if known_to_be(self.s_churn, 0) else None

    @property
    def deterministic(self) -> bool:
        return known_to_be(self.s_churn, 0) or known_to_be(self.s_noise, 0)

    def _gamma(self, sigma):
        """EDM's churn factor at ``sigma``: min(s_churn / N, sqrt(2) - 1) inside [s_tmin, s_tmax], else 0."""
        in_range = (sigma >= self.s_tmin) & (sigma <= self.s_tmax)
        return jnp.where(in_range, jnp.minimum(self.s_churn / self.num_steps, math.sqrt(2.0) - 1.0), 0.0)

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        gamma = self._gamma(sigma)
        sigma_hat = sigma * (1.0 + gamma)

        def churn(x):  # sqrt(sigma_hat^2 - sigma^2) written so that it is exactly 0 for gamma = 0
            eps = jax.random.normal(key, x.shape, x.dtype) * self.s_noise
            return x + sigma * jnp.sqrt(gamma * (2.0 + gamma)) * eps

        x_hat = jax.lax.cond(gamma > 0, churn, lambda x: x, x)
        d = (x_hat - denoiser(x_hat, sigma_hat)) / sigma_hat
        x_euler = x_hat + (sigma_next - sigma_hat) * d

        def correct(x_euler):
            d_next = (x_euler - denoiser(x_euler, sigma_next)) / sigma_next
            return x_hat + (sigma_next - sigma_hat) * 0.5 * (d + d_next)

        return jax.lax.cond(sigma_next > 0, correct, lambda x_euler: x_euler, x_euler), state

    def step_nfe(self, i, evaluations=unit_cost):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        gamma = self._gamma(sigma)
        second = jnp.where(sigma_next > 0, evaluations(jnp.where(sigma_next > 0, sigma_next, sigma)), 0)
        return (evaluations(sigma * (1.0 + gamma)) + second).astype(jnp.int32)
