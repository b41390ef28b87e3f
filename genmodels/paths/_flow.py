"""Flow-matching paths that reach pure noise at t = 1 (sigma = inf).

* ``Linear``: x_t = (1 - t) x0 + t eps (conditional flow matching / rectified flow), so s = 1 - t and
  sigma = t / (1 - t).
* ``Cosine``: x_t = cos(pi t / 2) x0 + sin(pi t / 2) eps (the variance-preserving trigonometric path), so
  s = cos(pi t / 2) and sigma = tan(pi t / 2).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from genmodels.paths._base import AbstractPath


class Linear(AbstractPath):
    """x_t = (1 - t) x0 + t eps on t in [0, 1]."""

    @property
    def t_min(self):
        return 0.0

    @property
    def t_max(self):
        return 1.0

    def scale(self, t):
        return 1.0 - jnp.asarray(t, dtype=jnp.result_type(float))

    def sigma(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        return t / (1.0 - t)

    def noise_std(self, t):
        return jnp.asarray(t, dtype=jnp.result_type(float))

    def inverse_sigma(self, sigma):
        sigma = jnp.asarray(sigma, dtype=jnp.result_type(float))
        return jnp.where(jnp.isinf(sigma), 1.0, sigma / (1.0 + jnp.where(jnp.isinf(sigma), 0.0, sigma)))

    def scale_deriv(self, t):
        return -jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(float)))

    def noise_std_deriv(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(float)))


class Cosine(AbstractPath):
    """x_t = cos(pi t / 2) x0 + sin(pi t / 2) eps on t in [0, 1]."""

    @property
    def t_min(self):
        return 0.0

    @property
    def t_max(self):
        return 1.0

    def scale(self, t):
        # cos(pi t / 2) written as sin(pi (1 - t) / 2): exactly 0 at t = 1 (float cos(pi / 2) is -4e-8 in
        # float32, which made sigma(1) = tan(pi / 2) a large negative number instead of inf)
        return jnp.sin(0.5 * math.pi * (1.0 - jnp.asarray(t, dtype=jnp.result_type(float))))

    def sigma(self, t):
        return self.noise_std(t) / self.scale(t)

    def noise_std(self, t):
        return jnp.sin(0.5 * math.pi * jnp.asarray(t, dtype=jnp.result_type(float)))

    def inverse_sigma(self, sigma):
        return jnp.arctan(jnp.asarray(sigma, dtype=jnp.result_type(float))) * (2.0 / math.pi)

    def scale_deriv(self, t):
        return -0.5 * math.pi * self.noise_std(t)

    def noise_std_deriv(self, t):
        return 0.5 * math.pi * self.scale(t)
