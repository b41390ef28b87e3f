"""The one driver: ``gm.sample(model, sampler, key, shape)`` and ``gm.solve`` (which also returns NFE
and, on request, the trajectory). Each is one ``eqx.filter_jit``-compiled program: arrays in the model,
the sampler, the key and the noise are traced, so new keys, parameters, schedules or noise of the same
shape reuse the compiled program; ``shape`` and ``save_trajectory`` are static.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
from jaxtyping import Array, PRNGKeyArray

from genmodels.samplers._base import AbstractSampler, Solution


def _check_shape_arg(shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError as err:
        raise ValueError(f"shape must be a tuple of ints such as (batch, dim), got {shape!r}.") from err
    if len(shape) < 1 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"shape must be a non-empty tuple of positive ints such as (batch, dim), got {shape!r}.")
    return shape


def _check_key(key) -> None:
    if not isinstance(key, jax.Array) or not (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.shape == (2,) and key.dtype.name == "uint32")
    ):
        raise TypeError(f"key must be a JAX PRNG key (jax.random.key(seed) or PRNGKey(seed)), got {key!r}.")


@eqx.filter_jit
def _solve(model, sampler, key, shape, noise, save_trajectory):
    return sampler.run(model, key, shape, noise, save_trajectory)


def solve(
    model: Any,
    sampler: AbstractSampler,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    noise: Array | None = None,
    save_trajectory: bool = False,
) -> Solution:
    """Run ``sampler`` on ``model`` as one compiled program and return a :class:`Solution`.

    Args:
        model: a denoiser ``D(x, sigma) -> E[x0 | x]`` (x = x0 + sigma eps, sigma a scalar or one value
            per batch row), an object with a ``denoise`` method, or a genmodels model the sampler knows
            (e.g. an autoregressive model for ``Ancestral``).
        sampler: a sampler from ``gm.samplers``.
        key: PRNG key; the same key gives the same samples.
        shape: output shape, batch first, e.g. ``(1024, 2)``.
        noise: optional standard-normal array of ``shape`` to start from (scaled to the sampler's first
            noise level); continuous samplers only.
        save_trajectory: keep every intermediate state in ``Solution.trajectory``.
    """
    if not isinstance(sampler, AbstractSampler):
        raise TypeError(f"sampler must be a genmodels sampler (gm.samplers.*), got {type(sampler).__name__}.")
    _check_key(key)
    shape = _check_shape_arg(shape)
    if not isinstance(save_trajectory, bool):
        raise TypeError(f"save_trajectory must be a bool, got {save_trajectory!r}.")
    return _solve(model, sampler, key, shape, noise, save_trajectory)


def sample(
    model: Any, sampler: AbstractSampler, key: PRNGKeyArray, shape: tuple[int, ...], *, noise: Array | None = None
) -> Array:
    """Samples of ``shape`` from ``model`` with ``sampler``: ``solve(...).samples``."""
    return solve(model, sampler, key, shape, noise=noise).samples
