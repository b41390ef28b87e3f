"""Diffusion paths: VE, VP, sub-VP (Song et al. 2021) and EDM (Karras et al. 2022).

Defaults are the published ones: VE sigma in [0.01, 50] (score_sde), VP/sub-VP beta in [0.1, 20] on
t in [1e-3, 1] (score_sde), EDM sigma in [0.002, 80] with sigma(t) = t, s(t) = 1.

Every number is a pytree leaf (see ``genmodels._arrays``): a path with other numbers reuses the compiled
program. Expressions in the numbers alone (sigma_max / sigma_min, beta_max - beta_min) are formed first, in
float64 when the numbers are concrete, and the result is cast to the dtype of ``t`` (or ``sigma``). Concrete
numbers are checked when the path is built (``gm.errors.ArgumentError`` naming the argument).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from genmodels._arrays import Number, check_less, floating, like, number
from genmodels.paths._base import AbstractPath


class VE(AbstractPath):
    """Variance exploding: s(t) = 1, sigma(t) = sigma_min (sigma_max / sigma_min)^t, t in [0, 1].

    Requires 0 < sigma_min < sigma_max (finite).
    """

    sigma_min: Number = eqx.field(default=0.01, converter=number("sigma_min", low=0.0))
    sigma_max: Number = eqx.field(default=50.0, converter=number("sigma_max", low=0.0))

    def __check_init__(self):
        check_less("sigma_min", self.sigma_min, "sigma_max", self.sigma_max)

    @property
    def t_min(self) -> float:
        return 0.0

    @property
    def t_max(self) -> float:
        return 1.0

    def scale(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.ones_like(floating(t))

    def sigma(self, t: ArrayLike) -> Float[Array, ...]:
        t = floating(t)
        return like(self.sigma_min, t) * like(self.sigma_max / self.sigma_min, t) ** t

    def inverse_sigma(self, sigma: ArrayLike) -> Float[Array, ...]:
        sigma = floating(sigma)
        return jnp.log(sigma / like(self.sigma_min, sigma)) / jnp.log(like(self.sigma_max / self.sigma_min, sigma))

    def scale_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.zeros_like(floating(t))

    def sigma_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        t = floating(t)
        return self.sigma(t) * jnp.log(like(self.sigma_max / self.sigma_min, t))


class _BetaLinear(AbstractPath):
    """Shared math of VP and sub-VP: alpha(t) = exp(-(beta_min t + beta_d t^2 / 2) / 2), beta_d = beta_max -
    beta_min. Requires 0 <= beta_min < beta_max (finite) and 0 <= eps_t < 1."""

    beta_min: Number = eqx.field(default=0.1, converter=number("beta_min", low=0.0, open_low=False))
    beta_max: Number = eqx.field(default=20.0, converter=number("beta_max", low=0.0))
    eps_t: Number = eqx.field(default=1e-3, converter=number("eps_t", low=0.0, high=1.0, open_low=False))

    def __check_init__(self):
        check_less("beta_min", self.beta_min, "beta_max", self.beta_max)

    @property
    def t_min(self) -> Number:
        return self.eps_t

    @property
    def t_max(self) -> float:
        return 1.0

    def _log_alpha(self, t: Array) -> Array:
        b0, bd = like(self.beta_min, t), like(self.beta_max - self.beta_min, t)
        return -0.5 * (b0 * t + 0.5 * bd * t**2)

    def _t_from_log_alpha(self, log_alpha: Array) -> Array:
        b0, bd = like(self.beta_min, log_alpha), like(self.beta_max - self.beta_min, log_alpha)
        return (jnp.sqrt(like(self.beta_min**2, log_alpha) - 4.0 * bd * log_alpha) - b0) / bd

    def scale(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.exp(self._log_alpha(floating(t)))


class VP(_BetaLinear):
    """Variance preserving: s(t) = alpha(t), sigma(t) = sqrt(1/alpha(t)^2 - 1) (EDM Table 1)."""

    def sigma(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.sqrt(jnp.expm1(-2.0 * self._log_alpha(floating(t))))

    def noise_std(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.sqrt(-jnp.expm1(2.0 * self._log_alpha(floating(t))))

    def inverse_sigma(self, sigma: ArrayLike) -> Float[Array, ...]:
        return self._t_from_log_alpha(-0.5 * jnp.log1p(floating(sigma) ** 2))


class SubVP(_BetaLinear):
    """Sub-VP: x_t = alpha x0 + (1 - alpha^2) eps, so s = alpha and sigma = (1 - alpha^2) / alpha."""

    def sigma(self, t: ArrayLike) -> Float[Array, ...]:
        la = self._log_alpha(floating(t))
        return -jnp.expm1(2.0 * la) * jnp.exp(-la)

    def noise_std(self, t: ArrayLike) -> Float[Array, ...]:
        return -jnp.expm1(2.0 * self._log_alpha(floating(t)))

    def inverse_sigma(self, sigma: ArrayLike) -> Float[Array, ...]:
        sigma = floating(sigma)
        alpha = 2.0 / (sigma + jnp.sqrt(sigma**2 + 4.0))  # positive root of a^2 + sigma a - 1 = 0
        return self._t_from_log_alpha(jnp.log(alpha))


class EDM(AbstractPath):
    """EDM (Karras et al. 2022): s(t) = 1, sigma(t) = t on [sigma_min, sigma_max] = [0.002, 80].

    ``sigma_data`` (0.5) is carried for preconditioning and loss weighting; ``rho`` (7) for the grid.
    Requires 0 < sigma_min < sigma_max, sigma_data > 0 and rho > 0 (all finite).
    """

    sigma_min: Number = eqx.field(default=0.002, converter=number("sigma_min", low=0.0))
    sigma_max: Number = eqx.field(default=80.0, converter=number("sigma_max", low=0.0))
    sigma_data: Number = eqx.field(default=0.5, converter=number("sigma_data", low=0.0))
    rho: Number = eqx.field(default=7.0, converter=number("rho", low=0.0))

    def __check_init__(self):
        check_less("sigma_min", self.sigma_min, "sigma_max", self.sigma_max)

    @property
    def t_min(self) -> Number:
        return self.sigma_min

    @property
    def t_max(self) -> Number:
        return self.sigma_max

    def scale(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.ones_like(floating(t))

    def sigma(self, t: ArrayLike) -> Float[Array, ...]:
        return floating(t)

    def inverse_sigma(self, sigma: ArrayLike) -> Float[Array, ...]:
        return floating(sigma)

    def scale_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.zeros_like(floating(t))

    def sigma_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.ones_like(floating(t))
