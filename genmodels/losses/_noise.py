"""The composable pieces of the denoising losses: noise-level distributions and weightings.

A noise distribution is an ``eqx.Module`` with ``sample(key, n, dtype) -> sigma`` of shape (n,); a
weighting is a callable ``lambda(sigma)``. Weightings here multiply the *denoiser* error
||D(x0 + sigma eps, sigma) - x0||^2 (EDM's convention); since the score error is
s - grad log p(x | x0) = (D - x0) / sigma^2, a score-space weight lambda_s(sigma) is lambda_s / sigma^4
here.

Every number (p_mean, sigma_min, sigma_data, a ladder's levels, ...) is a pytree leaf: new values reuse the
compiled loss. Concrete numbers are checked when the module is built (``gm.errors.ArgumentError`` naming
the argument: NaN, inf and out-of-range values are refused) and cast to the dtype in use.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from genmodels._arrays import Count, Number, RealScalar, check_less, check_number, floating, like, number, to_leaf
from genmodels._checks import as_sigma_schedule, check_count
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.paths import AbstractPath


def _optional_number(name):
    convert = number(name)
    return lambda value: None if value is None else convert(value)


class AbstractNoise(eqx.Module):
    """A distribution of noise levels; its numbers are leaves cast to the requested dtype at use."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, n: Count, dtype: Any = jnp.float32) -> Float[Array, " n"]:
        """n noise levels sigma > 0."""


class LogNormal(AbstractNoise):
    """ln sigma ~ N(p_mean, p_std^2); EDM's training distribution with p_mean = -1.2, p_std = 1.2.

    ``p_mean`` finite, ``p_std`` finite and >= 0.
    """

    p_mean: Number = eqx.field(default=-1.2, converter=number("p_mean"))
    p_std: Number = eqx.field(default=1.2, converter=number("p_std", low=0.0, open_low=False))

    def sample(self, key, n, dtype=jnp.float32):
        z = jax.random.normal(key, (n,), dtype)
        return jnp.exp(like(self.p_mean, z) + like(self.p_std, z) * z)


class LogUniform(AbstractNoise):
    """ln sigma ~ U(ln sigma_min, ln sigma_max) (EDM's VE loss: sigma in [0.02, 100]); 0 < sigma_min <
    sigma_max, finite."""

    sigma_min: Number = eqx.field(default=0.02, converter=number("sigma_min", low=0.0))
    sigma_max: Number = eqx.field(default=100.0, converter=number("sigma_max", low=0.0))

    def __check_init__(self):
        check_less("sigma_min", self.sigma_min, "sigma_max", self.sigma_max)

    def sample(self, key, n, dtype=jnp.float32):
        u = jax.random.uniform(key, (n,), dtype)
        return like(self.sigma_min, u) * like(self.sigma_max / self.sigma_min, u) ** u


def _ladder(sigmas):
    sigmas = to_leaf("sigmas", sigmas, ndim=None)
    if sigmas.ndim != 1 or sigmas.shape[0] < 1:
        raise ArgumentError(f"sigmas must be a non-empty 1-D array of noise levels, got shape {tuple(sigmas.shape)}.")
    if isinstance(sigmas, np.ndarray) and not bool(np.all(sigmas > 0) & np.all(np.isfinite(sigmas))):
        raise ArgumentError(f"sigmas must be finite and > 0, got {sigmas.tolist()[:6]}.")
    return sigmas


class Ladder(AbstractNoise):
    """sigma uniform over a fixed set of levels, e.g. NCSN's geometric ladder (finite, > 0; the number of
    levels is static, their values a leaf)."""

    sigmas: Float[ArrayLike, " L"] = eqx.field(converter=_ladder)

    def sample(self, key, n, dtype=jnp.float32):
        return jnp.asarray(self.sigmas, dtype)[jax.random.randint(key, (n,), 0, self.sigmas.shape[0])]


class PathTime(AbstractNoise):
    """t ~ U(t_min, t_max) on ``path`` (default the path's own range), sigma = path.sigma(t).

    With ``gm.paths.VP(eps_t=1e-5)`` this is EDM's VP loss distribution (t in [1e-5, 1]). ``t_min`` and
    ``t_max``, when given, are finite numbers (leaves) with t_min < t_max.
    """

    path: AbstractPath
    t_min: Number | None = eqx.field(default=None, converter=_optional_number("t_min"))
    t_max: Number | None = eqx.field(default=None, converter=_optional_number("t_max"))

    def __check_init__(self):
        if not isinstance(self.path, AbstractPath):
            raise ArgumentTypeError(f"path must be a gm.paths path, got {type(self.path).__name__}.")
        check_less("t_min", self._lo(), "t_max", self._hi())

    def _lo(self):
        return self.path.t_min if self.t_min is None else self.t_min

    def _hi(self):
        return self.path.t_max if self.t_max is None else self.t_max

    def sample(self, key, n, dtype=jnp.float32):
        lo, hi = jnp.asarray(self._lo(), dtype), jnp.asarray(self._hi(), dtype)
        t = jax.random.uniform(key, (n,), dtype, minval=lo, maxval=hi)
        return self.path.sigma(t).astype(dtype)


# ---- weightings of the denoiser error ||D - x0||^2 ---------------------------------------------------
# Each is a callable lambda(sigma) -> array of sigma's shape and dtype.


class EDMWeighting(eqx.Module):
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (EDM, Eq. 8): unit effective weight
    on the network output under EDM preconditioning. ``sigma_data`` finite and > 0."""

    sigma_data: Number = eqx.field(default=0.5, converter=number("sigma_data", low=0.0))

    def __call__(self, sigma: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        sigma = floating(sigma)
        return (sigma**2 + like(self.sigma_data**2, sigma)) / (sigma * like(self.sigma_data, sigma)) ** 2


class SigmaSquaredScore(eqx.Module):
    """lambda(sigma) = 1 / sigma^2 on the denoiser error, i.e. sigma^2 ||s - grad log p(x|x0)||^2 on the
    score error: NCSN's and score_sde's default weighting, and EDM's VP and VE losses."""

    def __call__(self, sigma: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        return 1.0 / floating(sigma) ** 2


class LikelihoodWeighting(eqx.Module):
    """score_sde's likelihood weighting lambda_s(t) = g(t)^2 on the score error of x_t, which in the
    scaled coordinates is g^2 / s^2 = d sigma^2 / dt; here (denoiser error) lambda = 2 sigma'(t) / sigma^3
    with t = path.inverse_sigma(sigma). With t ~ U(t_min, t_max) (:class:`PathTime`) the loss is then the
    ELBO's score term (Song et al. 2021, "Maximum likelihood training of score-based diffusion
    models"), up to the constant (t_max - t_min) and the reduction."""

    path: AbstractPath

    def __check_init__(self):
        if not isinstance(self.path, AbstractPath):
            raise ArgumentTypeError(f"path must be a gm.paths path, got {type(self.path).__name__}.")

    def __call__(self, sigma: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        sigma = floating(sigma)
        t = self.path.inverse_sigma(sigma)
        return 2.0 * self.path.sigma_deriv(t) / sigma**3


class Constant(eqx.Module):
    """lambda(sigma) = value (finite and >= 0)."""

    value: Number = eqx.field(default=1.0, converter=number("value", low=0.0, open_low=False))

    def __call__(self, sigma: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        sigma = floating(sigma)
        return jnp.full_like(sigma, like(self.value, sigma))


def ncsn_sigmas(
    num_levels: Count = 10, sigma_min: RealScalar = 0.01, sigma_max: RealScalar = 1.0
) -> Float[Array, " num_levels"]:
    """NCSN's geometric noise ladder: ``num_levels`` (an int >= 2) levels from sigma_max down to sigma_min
    (0 < sigma_min < sigma_max, finite)."""
    num_levels = check_count("num_levels", num_levels, minimum=2)
    check_number("sigma_min", sigma_min, low=0.0)
    check_number("sigma_max", sigma_max, low=0.0)
    check_less("sigma_min", sigma_min, "sigma_max", sigma_max)
    return as_sigma_schedule(jnp.geomspace(sigma_max, sigma_min, num_levels), "sigmas", allow_inf_start=False)
