"""The abstract Gaussian path.

Every path in genmodels is a family of marginals

    x_t = s(t) * (x0 + sigma(t) * eps),     eps ~ N(0, I),

as in Karras et al. (2022), Eq. 7. The samplers all work in the *scaled* coordinates
x_hat = x_t / s(t) = x0 + sigma * eps and are indexed by sigma alone, so a path only matters when a model
is parameterised in its own coordinates (score, eps, v or velocity in x_t and t) or when a grid is made
uniform in its t. ``alpha(t) = s(t)`` and ``noise_std(t) = s(t) sigma(t)`` are the coefficients of x0 and
eps in x_t; they stay finite where sigma is infinite (e.g. the Linear path at t = 1).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from genmodels._arrays import Number, floating


def _elementwise_derivative(fn, t):
    t = floating(t)
    return jax.jvp(fn, (t,), (jnp.ones_like(t),))[1]


class AbstractPath(eqx.Module):
    """A Gaussian path x_t = s(t) (x0 + sigma(t) eps) on t in [t_min, t_max].

    Subclasses implement ``scale``, ``sigma`` and ``inverse_sigma``; derivatives default to forward-mode
    autodiff and are overridden with closed forms where those are simple. Every method maps an array of
    times (or noise levels) elementwise to an array of the same shape and of the input's floating dtype
    (integer inputs give the default float dtype); a path's numbers are pytree leaves, cast to that dtype
    where they are used (see ``genmodels._arrays``).
    """

    @property
    @abc.abstractmethod
    def t_min(self) -> float | Number:
        """Smallest time of the path (data end): a Python float when fixed by the path's family, else one
        of its number leaves (e.g. EDM's sigma_min)."""

    @property
    @abc.abstractmethod
    def t_max(self) -> float | Number:
        """Largest time of the path (noise end), as :attr:`t_min`."""

    @abc.abstractmethod
    def scale(self, t: ArrayLike) -> Float[Array, ...]:
        """s(t), the scale applied to x0 + sigma eps."""

    @abc.abstractmethod
    def sigma(self, t: ArrayLike) -> Float[Array, ...]:
        """sigma(t), the noise level in the scaled coordinates."""

    @abc.abstractmethod
    def inverse_sigma(self, sigma: ArrayLike) -> Float[Array, ...]:
        """t such that sigma(t) = sigma (sigma may be inf where the path reaches pure noise)."""

    def alpha(self, t: ArrayLike) -> Float[Array, ...]:
        """Coefficient of x0 in x_t: alpha(t) = s(t)."""
        return self.scale(t)

    def noise_std(self, t: ArrayLike) -> Float[Array, ...]:
        """Coefficient of eps in x_t: s(t) sigma(t), finite even where sigma(t) is infinite."""
        return self.scale(t) * self.sigma(t)

    def scale_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        """ds/dt."""
        return _elementwise_derivative(self.scale, t)

    def sigma_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        """d sigma/dt."""
        return _elementwise_derivative(self.sigma, t)

    def noise_std_deriv(self, t: ArrayLike) -> Float[Array, ...]:
        """d (s sigma)/dt."""
        return _elementwise_derivative(self.noise_std, t)
