"""Denoising score matching in the EDM coordinates, and its published instances.

    L = E_{x0, sigma, eps} [ lambda(sigma) || D(x0 + sigma eps, sigma) - x0 ||^2 ]

For each sigma the minimiser is the exact denoiser D*(x, sigma) = E[x0 | x] (equivalently the score
(D* - x) / sigma^2, Vincent 2011), and the loss there equals E lambda(sigma) tr Cov[x0 | x], the
irreducible part. ``noise`` draws sigma, ``weighting`` gives lambda; see ``gm.losses`` for the pieces.
Every loss takes (model, batch, key) so that ``functools.partial(edm_loss, sigma_data=0.5)`` is a
trainer ``loss_fn``; the model may be any ``gm.models`` model, an analytic ``gm.targets`` mixture, or a
plain denoiser callable ``D(x, sigma)``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from genmodels.losses._common import finish, row_error, rows_of, split_batch
from genmodels.losses._noise import (
    AbstractNoise,
    EDMWeighting,
    Ladder,
    LogNormal,
    LogUniform,
    PathTime,
    SigmaSquaredScore,
)
from genmodels.models._common import denoise
from genmodels.paths import VP


def dsm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    noise: AbstractNoise,
    weighting: Callable[[Array], Array],
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """E lambda(sigma) ||D(x0 + sigma eps, sigma) - x0||^2 over the batch.

    Args:
        model: a model with ``denoise(x, sigma, labels=None)`` or a denoiser callable.
        batch: x0 of shape (batch, ...), or (x0, labels) / {"x": x0, "labels": labels}.
        key: PRNG key (noise levels and noise).
        noise: distribution of sigma (e.g. ``LogNormal()``).
        weighting: lambda(sigma) on the denoiser error (e.g. ``EDMWeighting(0.5)``).
        reduction: squared error per row averaged ("mean") or summed ("sum") over the data dimensions.
        with_metrics: also return a dict of metrics (``denoise_mse``, the unweighted error).

    Returns:
        the scalar loss, or (loss, metrics) with ``with_metrics``.
    """
    x0, labels = split_batch(batch)
    if not isinstance(noise, AbstractNoise):
        raise TypeError(f"noise must be a gm.losses noise distribution (e.g. LogNormal()), got {type(noise).__name__}.")
    k_sigma, k_eps = jax.random.split(key)
    sigma = noise.sample(k_sigma, x0.shape[0], x0.dtype)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    x = x0 + rows_of(sigma, x0) * eps
    err = row_error(denoise(model, x, sigma, labels) - x0, reduction)
    loss = jnp.mean(weighting(sigma) * err)
    return finish(loss, {"denoise_mse": jnp.mean(err)}, with_metrics)


def edm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    sigma_data: float | None = None,
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """EDM's loss (Karras et al. 2022, Table 1): ln sigma ~ N(p_mean, p_std^2),
    lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2. ``sigma_data`` defaults to the model's
    (``EDMModel.sigma_data``), else 0.5."""
    if sigma_data is None:
        sigma_data = getattr(model, "sigma_data", 0.5)
    return dsm_loss(
        model, batch, key, noise=LogNormal(p_mean, p_std), weighting=EDMWeighting(sigma_data),
        reduction=reduction, with_metrics=with_metrics,
    )


def vp_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    beta_min: float = 0.1,
    beta_d: float = 19.9,
    epsilon_t: float = 1e-5,
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """EDM's VP loss (DDPM++ / score_sde VP): t ~ U(epsilon_t, 1), sigma = sigma_VP(t) with
    beta(t) = beta_min + beta_d t, lambda = 1 / sigma^2. Pair with ``EDMModel(net, precond=VPPrecond())``."""
    path = VP(beta_min=beta_min, beta_max=beta_min + beta_d, eps_t=epsilon_t)
    return dsm_loss(
        model, batch, key, noise=PathTime(path), weighting=SigmaSquaredScore(),
        reduction=reduction, with_metrics=with_metrics,
    )


def ve_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigma_min: float = 0.02,
    sigma_max: float = 100.0,
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """EDM's VE loss (NCSN++ / score_sde VE): ln sigma ~ U(ln sigma_min, ln sigma_max), lambda = 1 / sigma^2.
    Pair with ``EDMModel(net, precond=VEPrecond())``."""
    return dsm_loss(
        model, batch, key, noise=LogUniform(sigma_min, sigma_max), weighting=SigmaSquaredScore(),
        reduction=reduction, with_metrics=with_metrics,
    )


def ncsn_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigmas: Array,
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """NCSN's loss (Song & Ermon 2019): sigma uniform over the ladder ``sigmas`` (see ``ncsn_sigmas``),
    score error weighted by sigma^2, i.e. E ||sigma s(x, sigma) + eps||^2 = E ||D - x0||^2 / sigma^2
    (NCSN's objective without its factor 1/2). Use with ``gm.models.ScoreModel``."""
    return dsm_loss(
        model, batch, key, noise=Ladder(sigmas), weighting=SigmaSquaredScore(),
        reduction=reduction, with_metrics=with_metrics,
    )
