"""Denoising score matching in the EDM coordinates, and its published instances.

    L = E_{x0, sigma, eps} [ lambda(sigma) || D(x0 + sigma eps, sigma) - x0 ||^2 ]

For each sigma the minimiser is the exact denoiser D*(x, sigma) = E[x0 | x] (equivalently the score
(D* - x) / sigma^2, Vincent 2011), and the loss there equals E lambda(sigma) tr Cov[x0 | x], the
irreducible part. ``noise`` draws sigma, ``weighting`` gives lambda; see ``gm.losses`` for the pieces.
Every loss takes (model, batch, key) and returns (loss, metrics), so that
``functools.partial(edm_loss, sigma_data=0.5)`` is a trainer ``loss_fn``; the model is a
``gm.protocols.AbstractDenoiserModel`` (any ``gm.models`` model, an analytic ``gm.targets`` mixture) or a
plain denoiser callable ``D(x, sigma)``. A model with a learned loss weighting
(``gm.protocols.HasLearnedWeighting``, EDM2's log-variance head u(sigma)) is trained on
exp(-u) lambda ||D - x0||^2 + u per row, whose minimiser in u is the log of the row's weighted error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from genmodels.errors import ArgumentTypeError
from genmodels.losses._common import LossAndMetrics, Reduction, denoiser_model, finish, row_error, rows_of, split_batch
from genmodels.losses._noise import (
    AbstractNoise,
    EDMWeighting,
    Ladder,
    LogNormal,
    LogUniform,
    PathTime,
    SigmaSquaredScore,
)
from genmodels.models._edm import EDMModel
from genmodels.paths import VP
from genmodels.protocols import AbstractDenoiserModel, HasLearnedWeighting


def _dsm(
    model: AbstractDenoiserModel,
    batch: Any,
    key: PRNGKeyArray,
    noise: AbstractNoise,
    weighting: Callable,
    reduction: Reduction,
) -> LossAndMetrics:
    x0, labels = split_batch(batch)
    if not isinstance(noise, AbstractNoise):
        raise ArgumentTypeError(
            f"noise must be a gm.losses noise distribution (e.g. LogNormal()), got {type(noise).__name__}."
        )
    if not callable(weighting):
        raise ArgumentTypeError(f"weighting must be a callable lambda(sigma) (e.g. EDMWeighting()), got {weighting!r}.")
    k_sigma, k_eps = jax.random.split(key)
    sigma = noise.sample(k_sigma, x0.shape[0], x0.dtype)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    x = x0 + rows_of(sigma, x0) * eps
    err = row_error(model.denoise(x, sigma, labels) - x0, reduction)
    per_row = weighting(sigma) * err
    metrics = {"denoise_mse": jnp.mean(err)}
    if isinstance(model, HasLearnedWeighting):
        u = model.log_variance(sigma)
        per_row = jnp.exp(-u) * per_row + u
        metrics["log_variance"] = jnp.mean(u)
    return finish(jnp.mean(per_row), metrics)


def dsm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    noise: AbstractNoise,
    weighting: Callable[[Float[Array, " batch"]], Float[Array, " batch"]],
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """E lambda(sigma) ||D(x0 + sigma eps, sigma) - x0||^2 over the batch; with a learned weighting
    (``gm.protocols.HasLearnedWeighting``, EDM2's u(sigma)) E [exp(-u(sigma)) lambda(sigma) ||D - x0||^2
    + u(sigma)] instead (Karras et al. 2024, Eq. 21; per row, after the reduction over the data
    dimensions, so with "mean" it is EDM2's per-element loss averaged).

    Args:
        model: a ``gm.protocols.AbstractDenoiserModel`` (``gm.models.EDMModel``, ``PathModel``, a
            ``gm.targets`` mixture, ...) or a plain denoiser callable ``D(x, sigma)``; other
            ``gm.protocols`` models (autoregressive, flow maps) are a ProtocolError.
        batch: x0 of shape (batch, ...), or (x0, labels) / {"x": x0, "labels": labels}.
        key: PRNG key (noise levels and noise).
        noise: distribution of sigma (e.g. ``LogNormal()``).
        weighting: lambda(sigma) on the denoiser error (e.g. ``EDMWeighting(0.5)``).
        reduction: squared error per row averaged ("mean") or summed ("sum") over the data dimensions.

    Returns:
        (loss, metrics): metrics hold ``loss``, ``denoise_mse`` (the unweighted error) and, with a learned
        weighting, ``log_variance`` (the batch mean of u).
    """
    model = denoiser_model(model, "dsm_loss")
    return _dsm(model, batch, key, noise, weighting, reduction)


def edm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    p_mean: Real[ArrayLike, ""] = -1.2,
    p_std: Real[ArrayLike, ""] = 1.2,
    sigma_data: Real[ArrayLike, ""] | None = None,
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """EDM's loss (Karras et al. 2022, Table 1): ln sigma ~ N(p_mean, p_std^2),
    lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2. ``sigma_data`` defaults to the model's own
    when the model is a ``gm.models.EDMModel``, else 0.5; pass it for any other model. Model and return
    as in :func:`dsm_loss`."""
    model = denoiser_model(model, "edm_loss")
    if sigma_data is None:
        sigma_data = model.sigma_data if isinstance(model, EDMModel) else 0.5
    return _dsm(model, batch, key, LogNormal(p_mean, p_std), EDMWeighting(sigma_data), reduction)


def vp_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    beta_min: Real[ArrayLike, ""] = 0.1,
    beta_d: Real[ArrayLike, ""] = 19.9,
    epsilon_t: Real[ArrayLike, ""] = 1e-5,
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """EDM's VP loss (DDPM++ / score_sde VP): t ~ U(epsilon_t, 1), sigma = sigma_VP(t) with
    beta(t) = beta_min + beta_d t, lambda = 1 / sigma^2. Pair with ``EDMModel(net, precond=VPPrecond())``.
    Model and return as in :func:`dsm_loss`."""
    model = denoiser_model(model, "vp_loss")
    path = VP(beta_min=beta_min, beta_max=beta_min + beta_d, eps_t=epsilon_t)
    return _dsm(model, batch, key, PathTime(path), SigmaSquaredScore(), reduction)


def ve_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigma_min: Real[ArrayLike, ""] = 0.02,
    sigma_max: Real[ArrayLike, ""] = 100.0,
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """EDM's VE loss (NCSN++ / score_sde VE): ln sigma ~ U(ln sigma_min, ln sigma_max), lambda = 1 / sigma^2.
    Pair with ``EDMModel(net, precond=VEPrecond())``. Model and return as in :func:`dsm_loss`."""
    model = denoiser_model(model, "ve_loss")
    return _dsm(model, batch, key, LogUniform(sigma_min, sigma_max), SigmaSquaredScore(), reduction)


def ncsn_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigmas: Float[Array, " L"],
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """NCSN's loss (Song & Ermon 2019): sigma uniform over the ladder ``sigmas`` (see ``ncsn_sigmas``),
    score error weighted by sigma^2, i.e. E ||sigma s(x, sigma) + eps||^2 = E ||D - x0||^2 / sigma^2
    (NCSN's objective without its factor 1/2). Use with ``gm.models.ScoreModel``. Model and return as in
    :func:`dsm_loss`."""
    model = denoiser_model(model, "ncsn_loss")
    return _dsm(model, batch, key, Ladder(sigmas), SigmaSquaredScore(), reduction)
