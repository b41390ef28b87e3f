"""Flow-matching paths that reach pure noise at t = 1 (sigma = inf). They have no numbers to trace.

* ``Linear``: x_t = (1 - t) x0 + t eps (conditional flow matching / rectified flow), so s = 1 - t and
  sigma = t / (1 - t).
* ``Cosine``: x_t = cos(pi t / 2) x0 + sin(pi t / 2) eps (the variance-preserving trigonometric path), so
  s = cos(pi t / 2) and sigma = tan(pi t / 2).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from genmodels._arrays import floating
from genmodels.paths._base import AbstractPath


class Linear(AbstractPath):
    """x_t = (1 - t) x0 + t eps on t in [0, 1]."""

    @property
    def t_min(self) -> float:
        return 0.0

    @property
    def t_max(self) -> float:
        return 1.0

    def scale(self, t: ArrayLike) -> Float[Array, ...]:
        return 1.0 - floating(t)

    def sigma(self, t: ArrayLike) -> Float[Array, ...]:
        t = floating(t)
        return t / (1.0 - t)

    def noise_std(self, t: ArrayLike) -> Float[Array, ...]:
        return floating(t)

    def inverse_sigma(self, sigma: ArrayLike) -> Float[Array, ...]:
        sigma = floating(sigma)
        return jnp.where(jnp.isinf(sigma), 1.0, sigma / (1.0 + jnp.where(jnp.isinf(sigma), 0.0, sigma)))

    def scale_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        return -jnp.ones_like(floating(t))

    def noise_std_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.ones_like(floating(t))


class Cosine(AbstractPath):
    """x_t = cos(pi t / 2) x0 + sin(pi t / 2) eps on t in [0, 1]."""

    @property
    def t_min(self) -> float:
        return 0.0

    @property
    def t_max(self) -> float:
        return 1.0

    def scale(self, t: ArrayLike) -> Float[Array, ...]:
        # cos(pi t / 2) written as sin(pi (1 - t) / 2): exactly 0 at t = 1 (float cos(pi / 2) is -4e-8 in
        # float32, which made sigma(1) = tan(pi / 2) a large negative number instead of inf)
        return jnp.sin(0.5 * math.pi * (1.0 - floating(t)))

    def sigma(self, t: ArrayLike) -> Float[Array, ...]:
        return self.noise_std(t) / self.scale(t)

    def noise_std(self, t: ArrayLike) -> Float[Array, ...]:
        return jnp.sin(0.5 * math.pi * floating(t))

    def inverse_sigma(self, sigma: ArrayLike) -> Float[Array, ...]:
        return jnp.arctan(floating(sigma)) * (2.0 / math.pi)

    def scale_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        return -0.5 * math.pi * self.noise_std(t)

    def noise_std_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        return 0.5 * math.pi * self.scale(t)
