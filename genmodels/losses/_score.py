"""Score matching without a denoising target: exact (Hyvarinen 2005) and sliced (Song et al. 2019).

For a score model s(x) and data p, the Fisher divergence is

    F = 1/2 E_p ||s(x) - grad log p(x)||^2 = J(s) + 1/2 E_p ||grad log p||^2,
    J(s) = E_p [ tr(grad_x s(x)) + 1/2 ||s(x)||^2 ]                         (exact, "ESM")
         = E_p E_v [ v^T grad_x s(x) v + 1/2 (v^T s(x))^2 ]                  (sliced, "SSM")
         = E_p E_v [ v^T grad_x s(x) v + 1/2 ||s(x)||^2 ]                   (sliced, variance reduced)

with projections v of identity covariance (Gaussian or Rademacher). With ``noise`` the data are first
perturbed, x = x0 + sigma eps, and the objective is that of p_sigma at each sigma, weighted by
lambda(sigma) (default sigma^2, as NCSN trained with SSM). The Jacobian-vector products use
``jax.jvp`` on the batched score, which is exact as long as the network treats batch rows
independently (no batch statistics), as ``gm.nets`` do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, PRNGKeyArray, Real

from genmodels._arrays import like, to_leaf
from genmodels._checks import check_count, check_positive
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.losses._common import LossAndMetrics, Reduction, finish, row_reduce, rows_of, score_fn, split_batch
from genmodels.losses._noise import AbstractNoise

Projection = Literal["gaussian", "rademacher"]
"""The law of the projections v of sliced score matching (static)."""

_PROJECTIONS = {"gaussian": jax.random.normal, "rademacher": jax.random.rademacher}


def _noisy(batch, key, noise):
    x0, labels = split_batch(batch)
    k_sigma, k_eps = jax.random.split(key)
    n = x0.shape[0]
    if isinstance(noise, AbstractNoise):
        sigma = noise.sample(k_sigma, n, x0.dtype)
    elif noise is None:
        sigma = jnp.zeros((n,), x0.dtype)
    elif isinstance(noise, (int, float, np.number, np.ndarray, jax.Array)) and not isinstance(noise, bool):
        level = to_leaf("noise", noise)
        check_positive("noise (a fixed noise level)", level, allow_zero=True)
        sigma = jnp.full((n,), like(level, x0), x0.dtype)
    else:
        raise ArgumentTypeError(
            f"noise must be None, a number or a gm.losses noise distribution, got {type(noise).__name__}."
        )
    x = x0 + rows_of(sigma, x0) * jax.random.normal(k_eps, x0.shape, x0.dtype)
    return x, sigma, labels


def _weights(weighting, sigma, noise):
    if weighting is not None:
        return weighting(sigma)
    return sigma**2 if isinstance(noise, AbstractNoise) else jnp.ones_like(sigma)


def _flat_sum(a):
    return jnp.sum(a.reshape(a.shape[0], -1), axis=-1)


def _projections(key, projection, shape, dtype):
    if not isinstance(projection, str) or projection not in _PROJECTIONS:
        raise ArgumentError(f"projection must be 'gaussian' or 'rademacher', got {projection!r}.")
    return _PROJECTIONS[projection](key, shape, dtype)


def ssm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    noise: AbstractNoise | Real[ArrayLike, ""] | None = None,
    weighting: Callable[[Array], Array] | None = None,
    num_projections: int = 1,
    variance_reduction: bool = False,
    projection: Projection = "gaussian",
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """Sliced score matching, J(s) estimated with ``num_projections`` random projections per row.

    Args:
        model: a ``gm.protocols.HasScore`` model (its native score), any other
            ``gm.protocols.AbstractDenoiserModel`` (Tweedie's score (D - x) / sigma^2), or a score callable
            ``s(x, sigma)``; other ``gm.protocols`` models are a ProtocolError.
        batch: x0 (batch, ...) or (x0, labels) / dict.
        noise: None (clean data, sigma = 0 passed to the model), a fixed sigma (may be traced), or a noise
            distribution.
        weighting: lambda(sigma) on the per-row objective; default sigma^2 with a noise distribution,
            else 1.
        num_projections: projections per row (static).
        variance_reduction: SSM-VR, replacing 1/2 (v^T s)^2 by its expectation 1/2 ||s||^2 (static).
        projection: "gaussian" or "rademacher" projections v (a static ``Literal``).
        reduction: "mean" divides the per-row objective by the number of data dimensions.

    Returns:
        (loss, {"loss", "score_sq"}): score_sq is the batch mean of ||s||^2.
    """
    fn_score = score_fn(model, "ssm_loss")
    num_projections = check_count("num_projections", num_projections)
    k_data, k_v = jax.random.split(key)
    x, sigma, labels = _noisy(batch, k_data, noise)
    v = _projections(k_v, projection, (num_projections,) + x.shape, x.dtype)

    def fn(y):
        return fn_score(y, sigma, labels)

    def one(vi):
        s, jv = jax.jvp(fn, (x,), (vi,))
        quad = _flat_sum(vi * jv)
        second = _flat_sum(s**2) if variance_reduction else _flat_sum(vi * s) ** 2
        return quad + 0.5 * second, _flat_sum(s**2)

    obj, s2 = jax.vmap(one)(v)
    per_row = row_reduce(jnp.mean(obj, axis=0), x, reduction)
    loss = jnp.mean(_weights(weighting, sigma, noise) * per_row)
    return finish(loss, {"score_sq": jnp.mean(s2)})


def exact_score_matching_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    noise: AbstractNoise | Real[ArrayLike, ""] | None = None,
    weighting: Callable[[Array], Array] | None = None,
    max_dim: int = 64,
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """Exact (Hyvarinen) score matching J(s) = E[tr grad s + 1/2 ||s||^2], the trace from one JVP per
    data dimension (so only for small dimension: more than ``max_dim`` dimensions is a ValueError).
    Arguments as in :func:`ssm_loss`. Returns (loss, {"loss", "score_sq", "trace"})."""
    fn_score = score_fn(model, "exact_score_matching_loss")
    x, sigma, labels = _noisy(batch, key, noise)
    d = x.size // x.shape[0]
    if d > max_dim:
        raise ArgumentError(
            f"exact score matching needs {d} Jacobian-vector products per batch ({d} data dimensions > "
            f"max_dim={max_dim}); use ssm_loss for high-dimensional data or raise max_dim."
        )
    basis = jnp.eye(d, dtype=x.dtype).reshape((d,) + x.shape[1:])

    def fn(y):
        return fn_score(y, sigma, labels)

    s = fn(x)

    def diag(e):
        tangent = jnp.broadcast_to(e, x.shape)
        return _flat_sum(tangent * jax.jvp(fn, (x,), (tangent,))[1])

    trace = jnp.sum(jax.vmap(diag)(basis), axis=0)
    per_row = row_reduce(trace + 0.5 * _flat_sum(s**2), x, reduction)
    loss = jnp.mean(_weights(weighting, sigma, noise) * per_row)
    return finish(loss, {"score_sq": jnp.mean(_flat_sum(s**2)), "trace": jnp.mean(trace)})
