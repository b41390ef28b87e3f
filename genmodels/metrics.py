"""Sample-quality metrics for low-dimensional data.

* ``sliced_wasserstein``: the sliced 2-Wasserstein distance, sqrt(E_theta W_2^2(theta^T x, theta^T y)) over
  random unit directions theta, each 1-D distance computed exactly from sorted projections.
* ``mmd``: the (biased, V-statistic) squared maximum mean discrepancy with a sum of Gaussian kernels.

Both are jit-compiled; the number of projections and sample sizes are static.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from genmodels.errors import ArgumentError


def _check_pair(x, y):
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ArgumentError(f"x and y must be (n, dim) and (m, dim) with the same dim, got {x.shape} and {y.shape}.")


@partial(jax.jit, static_argnames="num_projections")
def _swd(key, x, y, num_projections):
    theta = jax.random.normal(key, (x.shape[1], num_projections), x.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=0, keepdims=True)
    q = (jnp.arange(256) + 0.5) / 256  # compare quantile functions, so n != m works
    qx = jnp.quantile(x @ theta, q, axis=0)
    qy = jnp.quantile(y @ theta, q, axis=0)
    return jnp.sqrt(jnp.mean((qx - qy) ** 2))


def sliced_wasserstein(
    key: PRNGKeyArray, x: Float[Array, "n dim"], y: Float[Array, "m dim"], num_projections: int = 256
) -> Float[Array, ""]:
    """Sliced 2-Wasserstein distance between the empirical distributions of x and y.

    Each 1-D distance is computed between the two quantile functions at 256 levels, so the sample sizes may
    differ. Compare against the same distance between two fresh samples of the data (the baseline that
    finite samples alone produce).
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check_pair(x, y)
    return _swd(key, x, y, num_projections)


@jax.jit
def _mmd(x, y, bandwidths):
    def k(a, b):
        d2 = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2 * a @ b.T
        return jnp.sum(jnp.exp(-jnp.maximum(d2, 0)[..., None] / (2 * bandwidths**2)), axis=-1)

    return jnp.mean(k(x, x)) + jnp.mean(k(y, y)) - 2 * jnp.mean(k(x, y))


def mmd(
    x: Float[Array, "n dim"], y: Float[Array, "m dim"], bandwidths: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
) -> Float[Array, ""]:
    """Squared MMD (biased V-statistic) with the kernel sum_b exp(-||a - b||^2 / (2 b^2))."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check_pair(x, y)
    return _mmd(x, y, jnp.asarray(bandwidths, x.dtype))
