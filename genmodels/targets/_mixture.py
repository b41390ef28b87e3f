"""Gaussian mixtures with diagonal components: exact densities, scores and denoisers at every noise level.

With x0 ~ sum_k w_k N(mu_k, diag(s_k^2)) and x = x0 + sigma eps, the noisy marginal is again a mixture,
p_sigma(x) = sum_k w_k N(x; mu_k, diag(s_k^2 + sigma^2)), and Tweedie's formula gives the denoiser

    D(x, sigma) = sum_k r_k(x) [mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)],

with r_k the posterior responsibilities. These are the oracles the tests check samplers against.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.protocols import AbstractDenoiserModel, HasExactSamples, HasLimitAtInfinity, HasScore


class GaussianMixture(eqx.Module, AbstractDenoiserModel, HasScore, HasLimitAtInfinity, HasExactSamples):
    """sum_k w_k N(mu_k, diag(s_k^2)) in ``dim`` dimensions.

    Args:
        weights: (K,) non-negative mixture weights (normalised here).
        means: (K, dim) component means.
        stds: (K, dim), (K,) or scalar component standard deviations (> 0).

    Calling the mixture, ``mix(x, sigma)``, is its exact denoiser, so a target can be passed to
    ``gm.sample`` as the model (it is a ``gm.protocols`` denoiser model with a native score and the limit
    at sigma = inf). It is unconditional: ``labels`` must be None.
    """

    log_weights: Float[Array, " K"]
    means: Float[Array, "K dim"]
    stds: Float[Array, "K dim"]

    def __init__(self, weights: ArrayLike, means: ArrayLike, stds: ArrayLike):
        means = jnp.asarray(means, dtype=jnp.result_type(float))
        if means.ndim != 2:
            raise ArgumentError(f"means must have shape (K, dim), got {tuple(means.shape)}.")
        k, d = means.shape
        weights = jnp.asarray(weights, dtype=means.dtype)
        if weights.shape != (k,):
            raise ArgumentError(f"weights must have shape ({k},) to match means, got {tuple(weights.shape)}.")
        stds = jnp.asarray(stds, dtype=means.dtype)
        if stds.ndim == 1 and stds.shape == (k,):
            stds = stds[:, None]
        try:
            stds = jnp.broadcast_to(stds, (k, d)) if stds.ndim <= 2 else stds
        except (ValueError, TypeError):
            pass  # reported below with the accepted shapes
        if stds.shape != (k, d):
            raise ArgumentError(f"stds must be a scalar, (K,)=({k},) or (K, dim)=({k}, {d}); got {tuple(stds.shape)}.")
        if isinstance(weights, jax.Array) and not isinstance(weights, jax.core.Tracer):
            if np.any(np.asarray(weights) < 0) or not np.asarray(weights).sum() > 0:
                raise ArgumentError("weights must be non-negative with a positive sum.")
            if np.any(np.asarray(stds) <= 0):
                raise ArgumentError("stds must be > 0.")
        self.log_weights = jnp.log(weights / weights.sum())
        self.means = means
        self.stds = stds

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def weights(self) -> Float[Array, " K"]:
        return jnp.exp(self.log_weights)

    @property
    def mean(self) -> Float[Array, " dim"]:
        return self.weights @ self.means

    @property
    def covariance(self) -> Float[Array, "dim dim"]:
        w, mu = self.weights, self.means
        centred = mu - self.mean
        within = jnp.diag(w @ self.stds**2)
        return within + (centred * w[:, None]).T @ centred

    def _check(self, x, sigma=None, labels=None):
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ArgumentError(f"x must have shape (..., {self.dim}), got {tuple(x.shape)}.")
        if labels is not None:
            raise ArgumentTypeError(f"labels were given, but {type(self).__name__} is an unconditional target.")
        if sigma is not None:
            shape = jnp.shape(sigma)
            if shape != () and shape != tuple(x.shape[:-1]):
                raise ArgumentError(
                    f"sigma must be a scalar or have one value per row, shape {tuple(x.shape[:-1])}, got {shape}."
                )

    def _precisions(self, x, sigma):
        """P = 1 / (s^2 + sigma^2): (K, dim) for a scalar sigma, (*batch, K, dim) for one sigma per row."""
        sigma = jnp.asarray(sigma, dtype=jnp.result_type(x, self.means))
        sig2 = sigma**2 if sigma.ndim == 0 else (sigma**2)[..., None, None]
        return 1.0 / (self.stds**2 + sig2), sig2

    def _component_log_probs(self, x, sigma):
        """log w_k + log N(x; mu_k, diag(s_k^2 + sigma^2)), shape (..., K), the precisions P and sigma^2.

        For a scalar sigma the quadratic form is expanded, sum_d (x_d - mu_kd)^2 P_kd =
        (x - c)^2 @ P^T - 2 (x - c) @ ((mu - c) P)^T + sum_d (mu_kd - c_d)^2 P_kd, two (batch, dim) x (dim, K)
        products and no (batch, K, dim) array; c (the mean of the means) keeps the cancellation small. One
        sigma per row makes P itself (batch, K, dim), and the direct form is used.
        """
        self._check(x, sigma)
        prec, sig2 = self._precisions(x, sigma)
        if prec.ndim == 2:
            centre = jnp.mean(self.means, axis=0)
            xc, mc = x - centre, self.means - centre
            mp = mc * prec
            quad = (xc * xc) @ prec.T - 2.0 * (xc @ mp.T) + jnp.sum(mc * mp, axis=-1)
            quad = quad - jnp.sum(jnp.log(prec), axis=-1)  # minus log det of the precision, (K,)
        else:  # one reduction over (..., K, dim), so that XLA fuses it
            quad = jnp.sum((x[..., None, :] - self.means) ** 2 * prec - jnp.log(prec), axis=-1)
        lp = self.log_weights - 0.5 * (quad + self.dim * jnp.log(2 * jnp.pi))
        return lp, prec, sig2

    def log_prob(self, x: Float[Array, "*batch dim"], sigma: ArrayLike = 0.0) -> Float[Array, "*batch"]:
        """log p_sigma(x), the density of x0 + sigma eps (sigma scalar or one per batch row)."""
        x = jnp.asarray(x)
        self._check(x)
        lp, _, _ = self._component_log_probs(x, sigma)
        return jax.nn.logsumexp(lp, axis=-1)

    def score(self, x: Float[Array, "*batch dim"], sigma: ArrayLike = 0.0, labels=None) -> Float[Array, "*batch dim"]:
        """grad_x log p_sigma(x) = sum_k r_k (mu_k - x) P_k = r @ (mu P) - x (r @ P), with P = 1 / (s^2 + sigma^2)."""
        x = jnp.asarray(x)
        self._check(x, sigma, labels)
        lp, prec, _ = self._component_log_probs(x, sigma)
        r = jax.nn.softmax(lp, axis=-1)
        return _mix_rows(r, self.means * prec) - x * _mix_rows(r, prec)

    def denoise(self, x: Float[Array, "*batch dim"], sigma: ArrayLike, labels=None) -> Float[Array, "*batch dim"]:
        """E[x0 | x0 + sigma eps = x] by Tweedie's formula (exact at sigma = 0: returns x).

        sum_k r_k [mu_k + a_k (x - mu_k)] = x (r @ a) + r @ b with a = s^2 P and b = mu sigma^2 P: (batch, K) x
        (K, dim) products for a scalar sigma.
        """
        x = jnp.asarray(x)
        self._check(x, sigma, labels)
        lp, prec, sig2 = self._component_log_probs(x, sigma)
        r = jax.nn.softmax(lp, axis=-1)
        return x * _mix_rows(r, self.stds**2 * prec) + _mix_rows(r, self.means * (sig2 * prec))

    def __call__(self, x: Float[Array, "*batch dim"], sigma: ArrayLike) -> Float[Array, "*batch dim"]:
        return self.denoise(x, sigma)

    def at_infinity(self, eps: Float[Array, "batch dim"], labels=None) -> Float[Array, "batch dim"]:
        """lim_{sigma -> inf} D(sigma eps, sigma) = E[x0], the mixture mean."""
        self._check(eps, None, labels)
        return jnp.broadcast_to(self.mean, eps.shape).astype(eps.dtype)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n dim"]:
        """n exact samples."""
        kc, kn = jax.random.split(key)
        comp = jax.random.categorical(kc, self.log_weights, shape=(n,))
        noise = jax.random.normal(kn, (n, self.dim), self.means.dtype)
        return self.means[comp] + self.stds[comp] * noise

    def component_of(self, x: Float[Array, "*batch dim"]) -> Int[Array, "*batch"]:
        """Index of the most responsible component of each x (at sigma = 0)."""
        lp, _, _ = self._component_log_probs(jnp.asarray(x), 0.0)
        return jnp.argmax(lp, axis=-1)


def _mix_rows(r: Float[Array, "*batch K"], coef: Float[Array, "*#batch K dim"]) -> Float[Array, "*batch dim"]:
    """sum_k r_k coef_k: one (batch, K) x (K, dim) product when coef is shared by all rows."""
    if coef.ndim == 2:
        return r @ coef
    return jnp.einsum("...k,...kd->...d", r, coef)


def DiagonalGaussian(mean: ArrayLike, std: ArrayLike) -> GaussianMixture:
    """N(mean, diag(std^2)) as a one-component mixture (same exact methods)."""
    mean = jnp.atleast_1d(jnp.asarray(mean, dtype=jnp.result_type(float)))
    std = jnp.broadcast_to(jnp.asarray(std, dtype=mean.dtype), mean.shape)
    return GaussianMixture(jnp.ones((1,), mean.dtype), mean[None], std[None])


def eight_gaussians(radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """Eight equal Gaussians on a circle of ``radius`` (the 2-D benchmark of FFJORD and CFM papers)."""
    angles = jnp.arange(8) * (2 * jnp.pi / 8)
    means = radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)
    return GaussianMixture(jnp.ones(8), means, std)


def grid_gaussians(side: int = 5, spacing: float = 1.0, std: float = 0.1) -> GaussianMixture:
    """A side x side grid of equal Gaussians centred on the origin (the '25 Gaussians' benchmark)."""
    ticks = (jnp.arange(side) - (side - 1) / 2) * spacing
    gx, gy = jnp.meshgrid(ticks, ticks, indexing="ij")
    means = jnp.stack([gx.ravel(), gy.ravel()], axis=-1)
    return GaussianMixture(jnp.ones(side * side), means, std)


def random_mixture(key: PRNGKeyArray, dim: int, k: int = 8, spread: float = 2.0) -> GaussianMixture:
    """A random K-component diagonal mixture in ``dim`` dimensions (used by benchmarks and tests)."""
    kw, km, ks = jax.random.split(key, 3)
    weights = jax.random.uniform(kw, (k,), minval=0.5, maxval=1.5)
    means = spread * jax.random.normal(km, (k, dim))
    stds = jax.random.uniform(ks, (k, dim), minval=0.2, maxval=0.6)
    return GaussianMixture(weights, means, stds)
