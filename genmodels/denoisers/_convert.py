"""Adapters from path-native parameterisations to EDM denoisers, and back.

The samplers ask a model for the denoiser D(x_hat, sigma) = E[x0 | x_hat] with x_hat = x0 + sigma eps
(the EDM / k-diffusion convention). Models trained in a path's own coordinates x_t = a(t) x0 + b(t) eps
(a = s, b = s sigma) predict one of

* score:    grad log p_t(x_t)                         -> x0 = (x_t + b^2 score) / a
* eps:      E[eps | x_t]                              -> x0 = (x_t - b eps) / a
* v:        a eps - b x0 (Salimans & Ho 2022)          -> x0 = (a x_t - b v) / (a^2 + b^2)
* velocity: u = dx_t/dt = a' x0 + b' eps (flow match.) -> x0 = (b' x_t - b u) / (a b' - a' b)

Each adapter is an ``eqx.Module`` calling ``fn(x_t, t)`` with t = path.inverse_sigma(sigma) and
x_t = s(t) x_hat. ``v`` and ``velocity`` models also define the limit at sigma = inf
(``at_infinity(eps)``): there x_t = b(t_max) eps is finite, so a flow-matching model can start from pure
noise at t = 1 exactly.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax.numpy as jnp
from genmodels._arrays import rows
from jaxtyping import Array, Float

from genmodels.paths import EDM, AbstractPath, Linear


class _PathAdapter(eqx.Module):
    fn: Callable
    path: AbstractPath = EDM()

    def _x0(self, x_t, t):
        raise NotImplementedError

    def __call__(self, x: Float[Array, "batch *dims"], sigma) -> Float[Array, "batch *dims"]:
        t = self.path.inverse_sigma(sigma)
        x_t = x * rows(self.path.scale(t), x)
        return self._x0(x_t, jnp.asarray(t, dtype=x.dtype))


class from_score(_PathAdapter):
    """Denoiser from a score model ``score_fn(x_t, t) = grad_{x_t} log p_t(x_t)`` on ``path``.

    With the default ``path=EDM()`` (s = 1, t = sigma) this is the usual D = x + sigma^2 score(x, sigma).
    """

    def _x0(self, x_t, t):
        a, b = rows(self.path.alpha(t), x_t), rows(self.path.noise_std(t), x_t)
        return (x_t + b**2 * self.fn(x_t, t)) / a


class from_eps(_PathAdapter):
    """Denoiser from an eps-prediction model ``eps_fn(x_t, t) = E[eps | x_t]`` on ``path``."""

    def _x0(self, x_t, t):
        a, b = rows(self.path.alpha(t), x_t), rows(self.path.noise_std(t), x_t)
        return (x_t - b * self.fn(x_t, t)) / a


class _HasInfinity(_PathAdapter):
    def at_infinity(self, eps: Float[Array, "batch *dims"]) -> Float[Array, "batch *dims"]:
        """lim_{sigma -> inf} D(sigma eps, sigma): the model evaluated at t_max on x_t = b(t_max) eps."""
        t = jnp.asarray(self.path.t_max, dtype=eps.dtype)
        return self._x0(eps * self.path.noise_std(t), t)


class from_v(_HasInfinity):
    """Denoiser from a v-prediction model ``v_fn(x_t, t) = a eps - b x0`` on ``path``."""

    def _x0(self, x_t, t):
        a, b = rows(self.path.alpha(t), x_t), rows(self.path.noise_std(t), x_t)
        return (a * x_t - b * self.fn(x_t, t)) / (a**2 + b**2)


class from_velocity(_HasInfinity):
    """Denoiser from a flow-matching velocity ``u_fn(x_t, t) = dx_t/dt`` on ``path`` (default the
    Linear path, where x0 = x_t - t u)."""

    path: AbstractPath = Linear()

    def _x0(self, x_t, t):
        a, b = rows(self.path.alpha(t), x_t), rows(self.path.noise_std(t), x_t)
        da, db = rows(self.path.scale_deriv(t), x_t), rows(self.path.noise_std_deriv(t), x_t)
        return (db * x_t - b * self.fn(x_t, t)) / (a * db - da * b)


# ---- the other direction: a denoiser's output in each parameterisation -------------------------------


def score_from_denoised(x, sigma, denoised):
    """grad_{x_hat} log p_sigma(x_hat) = (D - x_hat) / sigma^2 (Tweedie)."""
    s = rows(sigma, x)
    return (denoised - x) / s**2


def eps_from_denoised(x, sigma, denoised):
    """E[eps | x_hat] = (x_hat - D) / sigma."""
    return (x - denoised) / rows(sigma, x)


def velocity_from_denoised(x_hat, sigma, denoised, path: AbstractPath):
    """Velocity dx_t/dt = a' x0 + b' eps of ``path`` at t = inverse_sigma(sigma), from a denoiser output."""
    t = path.inverse_sigma(sigma)
    eps = eps_from_denoised(x_hat, sigma, denoised)
    da, db = rows(path.scale_deriv(t), x_hat), rows(path.noise_std_deriv(t), x_hat)
    return da * denoised + db * eps


def v_from_denoised(x_hat, sigma, denoised, path: AbstractPath):
    """v = a eps - b x0 of ``path`` at t = inverse_sigma(sigma), from a denoiser output."""
    t = path.inverse_sigma(sigma)
    eps = eps_from_denoised(x_hat, sigma, denoised)
    a, b = rows(path.alpha(t), x_hat), rows(path.noise_std(t), x_hat)
    return a * eps - b * denoised
