"""Heun's second-order sampler with optional churn (Karras et al. 2022, Algorithms 1 and 2)."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels.samplers._base import AbstractStepSampler, float_param


class Heun(AbstractStepSampler):
    """EDM's stochastic Heun sampler; with ``s_churn = 0`` (default) the deterministic Algorithm 1.

    Per step, gamma = min(s_churn / N, sqrt(2) - 1) if s_tmin <= sigma_i <= s_tmax else 0; the state is
    first lifted to sigma_hat = sigma_i (1 + gamma) with fresh noise of std
    s_noise sqrt(sigma_hat^2 - sigma_i^2), then an Euler step to sigma_{i+1} is corrected by the
    trapezoidal rule unless sigma_{i+1} = 0. NFE = 2 steps - 1 on a schedule ending in 0.
    """

    s_churn: Float[Array, ""] = eqx.field(default=0.0, converter=float_param)
    s_tmin: Float[Array, ""] = eqx.field(default=0.0, converter=float_param)
    s_tmax: Float[Array, ""] = eqx.field(default=math.inf, converter=float_param)
    s_noise: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        in_range = (sigma >= self.s_tmin) & (sigma <= self.s_tmax)
        gamma = jnp.where(in_range, jnp.minimum(self.s_churn / self.num_steps, math.sqrt(2.0) - 1.0), 0.0)
        sigma_hat = sigma * (1.0 + gamma)
        eps = jax.random.normal(key, x.shape, x.dtype) * self.s_noise
        # sqrt(sigma_hat^2 - sigma^2) written so that it is exactly 0 for gamma = 0 (no FMA residue)
        x_hat = x + sigma * jnp.sqrt(gamma * (2.0 + gamma)) * eps
        d = (x_hat - denoiser(x_hat, sigma_hat)) / sigma_hat
        x_euler = x_hat + (sigma_next - sigma_hat) * d

        def correct(x_euler):
            d_next = (x_euler - denoiser(x_euler, sigma_next)) / sigma_next
            return x_hat + (sigma_next - sigma_hat) * 0.5 * (d + d_next)

        return jax.lax.cond(sigma_next > 0, correct, lambda x_euler: x_euler, x_euler), state

    def step_nfe(self, i):
        return jnp.where(self.sigmas[i + 1] > 0, 2, 1).astype(jnp.int32)
