"""Diffusion paths: VE, VP, sub-VP (Song et al. 2021) and EDM (Karras et al. 2022).

Defaults are the published ones: VE sigma in [0.01, 50] (score_sde), VP/sub-VP beta in [0.1, 20] on
t in [1e-3, 1] (score_sde), EDM sigma in [0.002, 80] with sigma(t) = t, s(t) = 1.
"""

from __future__ import annotations

import jax.numpy as jnp

from genmodels.paths._base import AbstractPath


class VE(AbstractPath):
    """Variance exploding: s(t) = 1, sigma(t) = sigma_min (sigma_max / sigma_min)^t, t in [0, 1]."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    @property
    def t_min(self):
        return 0.0

    @property
    def t_max(self):
        return 1.0

    def scale(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(float)))

    def sigma(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** jnp.asarray(t)

    def inverse_sigma(self, sigma):
        return jnp.log(jnp.asarray(sigma) / self.sigma_min) / jnp.log(self.sigma_max / self.sigma_min)

    def scale_deriv(self, t):
        return jnp.zeros_like(jnp.asarray(t, dtype=jnp.result_type(float)))

    def sigma_deriv(self, t):
        return self.sigma(t) * jnp.log(self.sigma_max / self.sigma_min)


class _BetaLinear(AbstractPath):
    """Shared math of VP and sub-VP: alpha(t) = exp(-(beta_min t + beta_d t^2 / 2) / 2)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    eps_t: float = 1e-3

    @property
    def t_min(self):
        return self.eps_t

    @property
    def t_max(self):
        return 1.0

    def _log_alpha(self, t):
        t = jnp.asarray(t)
        return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)

    def _t_from_log_alpha(self, log_alpha):
        bd = self.beta_max - self.beta_min
        return (jnp.sqrt(self.beta_min**2 - 4.0 * bd * log_alpha) - self.beta_min) / bd

    def scale(self, t):
        return jnp.exp(self._log_alpha(t))


class VP(_BetaLinear):
    """Variance preserving: s(t) = alpha(t), sigma(t) = sqrt(1/alpha(t)^2 - 1) (EDM Table 1)."""

    def sigma(self, t):
        return jnp.sqrt(jnp.expm1(-2.0 * self._log_alpha(t)))

    def noise_std(self, t):
        return jnp.sqrt(-jnp.expm1(2.0 * self._log_alpha(t)))

    def inverse_sigma(self, sigma):
        return self._t_from_log_alpha(-0.5 * jnp.log1p(jnp.asarray(sigma) ** 2))


class SubVP(_BetaLinear):
    """Sub-VP: x_t = alpha x0 + (1 - alpha^2) eps, so s = alpha and sigma = (1 - alpha^2) / alpha."""

    def sigma(self, t):
        la = self._log_alpha(t)
        return -jnp.expm1(2.0 * la) * jnp.exp(-la)

    def noise_std(self, t):
        return -jnp.expm1(2.0 * self._log_alpha(t))

    def inverse_sigma(self, sigma):
        sigma = jnp.asarray(sigma)
        alpha = 2.0 / (sigma + jnp.sqrt(sigma**2 + 4.0))  # positive root of a^2 + sigma a - 1 = 0
        return self._t_from_log_alpha(jnp.log(alpha))


class EDM(AbstractPath):
    """EDM (Karras et al. 2022): s(t) = 1, sigma(t) = t on [sigma_min, sigma_max] = [0.002, 80].

    ``sigma_data`` (0.5) is carried for preconditioning and loss weighting; ``rho`` (7) for the grid.
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    rho: float = 7.0

    @property
    def t_min(self):
        return self.sigma_min

    @property
    def t_max(self):
        return self.sigma_max

    def scale(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(float)))

    def sigma(self, t):
        return jnp.asarray(t, dtype=jnp.result_type(float))

    def inverse_sigma(self, sigma):
        return jnp.asarray(sigma, dtype=jnp.result_type(float))

    def scale_deriv(self, t):
        return jnp.zeros_like(jnp.asarray(t, dtype=jnp.result_type(float)))

    def sigma_deriv(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(float)))
