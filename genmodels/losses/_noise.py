"""The composable pieces of the denoising losses: noise-level distributions and weightings.

A noise distribution is an ``eqx.Module`` with ``sample(key, n, dtype) -> sigma`` of shape (n,); a
weighting is a callable ``lambda(sigma)``. Weightings here multiply the *denoiser* error
||D(x0 + sigma eps, sigma) - x0||^2 (EDM's convention); since the score error is
s - grad log p(x | x0) = (D - x0) / sigma^2, a score-space weight lambda_s(sigma) is lambda_s / sigma^4
here.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from genmodels._checks import as_sigma_schedule, check_positive
from genmodels.paths import AbstractPath


class AbstractNoise(eqx.Module):
    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, n: int, dtype=jnp.float32) -> Float[Array, " n"]:
        """n noise levels sigma > 0."""


class LogNormal(AbstractNoise):
    """ln sigma ~ N(p_mean, p_std^2); EDM's training distribution with p_mean = -1.2, p_std = 1.2."""

    p_mean: float = -1.2
    p_std: float = 1.2

    def sample(self, key, n, dtype=jnp.float32):
        return jnp.exp(self.p_mean + self.p_std * jax.random.normal(key, (n,), dtype))


class LogUniform(AbstractNoise):
    """ln sigma ~ U(ln sigma_min, ln sigma_max) (EDM's VE loss: sigma in [0.02, 100])."""

    sigma_min: float = 0.02
    sigma_max: float = 100.0

    def __check_init__(self):
        check_positive("sigma_min", self.sigma_min)
        check_positive("sigma_max", self.sigma_max)

    def sample(self, key, n, dtype=jnp.float32):
        u = jax.random.uniform(key, (n,), dtype)
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** u


class Ladder(AbstractNoise):
    """sigma uniform over a fixed set of levels, e.g. NCSN's geometric ladder."""

    sigmas: Float[Array, " L"]

    def __init__(self, sigmas):
        sigmas = jnp.asarray(sigmas, dtype=jnp.result_type(float))
        if sigmas.ndim != 1 or sigmas.shape[0] < 1:
            raise ValueError(f"sigmas must be a non-empty 1-D array of noise levels, got shape {tuple(sigmas.shape)}.")
        if not isinstance(sigmas, jax.core.Tracer) and not bool(np.all(np.asarray(sigmas) > 0) & np.all(np.isfinite(np.asarray(sigmas)))):
            raise ValueError("sigmas must be finite and > 0.")
        self.sigmas = sigmas

    def sample(self, key, n, dtype=jnp.float32):
        return self.sigmas[jax.random.randint(key, (n,), 0, self.sigmas.shape[0])].astype(dtype)


class PathTime(AbstractNoise):
    """t ~ U(t_min, t_max) on ``path`` (default the path's own range), sigma = path.sigma(t).

    With ``gm.paths.VP(eps_t=1e-5)`` this is EDM's VP loss distribution (t in [1e-5, 1]).
    """

    path: AbstractPath
    t_min: float | None = None
    t_max: float | None = None

    def sample(self, key, n, dtype=jnp.float32):
        lo = self.path.t_min if self.t_min is None else self.t_min
        hi = self.path.t_max if self.t_max is None else self.t_max
        t = jax.random.uniform(key, (n,), dtype, minval=lo, maxval=hi)
        return self.path.sigma(t).astype(dtype)


# ---- weightings of the denoiser error ||D - x0||^2 ---------------------------------------------------


class EDMWeighting(eqx.Module):
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (EDM, Eq. 8): unit effective weight
    on the network output under EDM preconditioning."""

    sigma_data: float = 0.5

    def __call__(self, sigma):
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2


class SigmaSquaredScore(eqx.Module):
    """lambda(sigma) = 1 / sigma^2 on the denoiser error, i.e. sigma^2 ||s - grad log p(x|x0)||^2 on the
    score error: NCSN's and score_sde's default weighting, and EDM's VP and VE losses."""

    def __call__(self, sigma):
        return 1.0 / sigma**2


class LikelihoodWeighting(eqx.Module):
    """score_sde's likelihood weighting lambda_s(t) = g(t)^2 on the score error of x_t, which in the
    scaled coordinates is g^2 / s^2 = d sigma^2 / dt; here (denoiser error) lambda = 2 sigma'(t) / sigma^3
    with t = path.inverse_sigma(sigma). With t ~ U(t_min, t_max) (:class:`PathTime`) the loss is then the
    ELBO's score term (Song et al. 2021, "Maximum likelihood training of score-based diffusion
    models"), up to the constant (t_max - t_min) and the reduction."""

    path: AbstractPath

    def __call__(self, sigma):
        t = self.path.inverse_sigma(sigma)
        return 2.0 * self.path.sigma_deriv(t) / sigma**3


class Constant(eqx.Module):
    """lambda(sigma) = value."""

    value: float = 1.0

    def __call__(self, sigma):
        return jnp.full_like(sigma, self.value)


def ncsn_sigmas(num_levels: int = 10, sigma_min: float = 0.01, sigma_max: float = 1.0) -> Float[Array, " L"]:
    """NCSN's geometric noise ladder: ``num_levels`` levels from sigma_max down to sigma_min."""
    if not isinstance(num_levels, int) or num_levels < 2:
        raise ValueError(f"num_levels must be an int >= 2, got {num_levels!r}.")
    check_positive("sigma_min", sigma_min)
    check_positive("sigma_max", sigma_max)
    if not sigma_min < sigma_max:
        raise ValueError(f"need sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
    return as_sigma_schedule(jnp.geomspace(sigma_max, sigma_min, num_levels), "sigmas", allow_inf_start=False)
