"""Abstract samplers.

Hierarchy (abstract classes are never instantiated; concrete samplers are final):

* ``AbstractSampler`` -- anything ``gm.sample`` can drive: ``run(model, key, shape, noise, save_trajectory)``.
* ``AbstractDenoiserSampler`` -- continuous samplers that ask the model for a denoiser
  D(x, sigma) = E[x0 | x0 + sigma eps]; draws or validates the starting noise and calls ``integrate``.
* ``AbstractStepSampler`` -- fixed-step samplers over a schedule ``sigmas``: ``init`` and ``step`` run
  inside one ``lax.scan``, so the whole loop is one compiled program. A step samples its own noise from
  ``jax.random.fold_in(key, i)``.

Numbers (schedules, churn, eta, step sizes) are pytree leaves and so are traced: new values never
recompile. Anything that sets a loop length (the schedule's length, steps per level) is a shape or a
static field.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from genmodels.samplers._denoiser import Denoiser
from genmodels._checks import as_sigma_schedule, check_finite, check_float_dtype, check_shape, is_concrete


class Solution(eqx.Module):
    """What ``gm.solve`` returns.

    Attributes:
        samples: the final samples, shape ``shape``.
        nfe: number of model evaluations (denoiser calls, or network calls for autoregressive models),
            counted inside the compiled program.
        trajectory: ``(num_saved, *shape)`` states when ``save_trajectory=True``, else ``None``. For step
            samplers row 0 is the starting state and row i the state after step i.
        levels: the noise level of each trajectory row (``None`` without a trajectory).
    """

    samples: Array
    nfe: Int[Array, ""]
    trajectory: Array | None = None
    levels: Array | None = None


class AbstractSampler(eqx.Module):
    """Anything the driver ``gm.sample`` / ``gm.solve`` can run."""

    @abc.abstractmethod
    def run(
        self, model: Any, key: PRNGKeyArray, shape: tuple[int, ...], noise: Array | None, save_trajectory: bool
    ) -> Solution:
        """Produce samples of ``shape``; called inside the driver's ``jit``."""


class AbstractDenoiserSampler(AbstractSampler):
    """Continuous samplers in the EDM coordinates x = x0 + sigma eps, driven by a denoiser."""

    @property
    @abc.abstractmethod
    def sigma_start(self) -> Float[Array, ""]:
        """Noise level the sampler starts from (the standard-normal noise is scaled by it)."""

    @abc.abstractmethod
    def integrate(
        self, denoiser: Denoiser, noise: Array, key: PRNGKeyArray, save_trajectory: bool
    ) -> Solution:
        """Run from ``sigma_start * noise`` down the schedule."""

    def run(self, model, key, shape, noise, save_trajectory):
        key_noise, key_run = jax.random.split(key)
        if noise is None:
            noise = jax.random.normal(key_noise, shape, dtype=jnp.result_type(float))
        else:
            noise = jnp.asarray(noise)
            check_shape("noise", noise, shape)
            check_float_dtype("noise", noise)
            noise = check_finite("noise", noise, "pass standard-normal noise of the requested shape")
        return self.integrate(Denoiser(model), noise, key_run, save_trajectory)


def _starts_at_infinity(sigmas) -> bool:
    # runs in __post_init__, before the converter has validated the schedule: guard the shape
    if not is_concrete(sigmas):
        return False
    v = np.asarray(sigmas)
    return v.ndim == 1 and v.shape[0] > 0 and bool(np.isinf(v[0]))


def float_param(value: Any) -> Array:
    """Converter for a sampler's numeric option (eta, s_noise, step sizes): a floating array leaf, so that
    ``eqx.filter_jit`` traces it and new values reuse the compiled program (a Python float would be static)."""
    arr = jnp.asarray(value)
    dtype = arr.dtype if jnp.issubdtype(arr.dtype, jnp.floating) else jnp.result_type(float)
    return jnp.asarray(arr, dtype=dtype)  # an explicit dtype also drops JAX's weak type


class AbstractStepSampler(AbstractDenoiserSampler):
    """Fixed-step sampler over a descending schedule ``sigmas`` (``steps + 1`` entries).

    A schedule may start at sigma = inf (pure noise, e.g. a flow-matching model on the Linear path at
    t = 1). The first step is then the exact limit of the Euler (DDIM) step, x_1 = D_inf(eps) +
    sigma_1 eps, which needs ``model.at_infinity``; every later step is the sampler's own.
    """

    sigmas: Float[Array, " n"] = eqx.field(converter=as_sigma_schedule)
    starts_at_infinity: bool = eqx.field(static=True, init=False)

    def __post_init__(self):
        self.starts_at_infinity = _starts_at_infinity(self.sigmas)

    @property
    def num_steps(self) -> int:
        return self.sigmas.shape[0] - 1

    @property
    def sigma_start(self):
        return self.sigmas[0]

    def init(self, denoiser: Denoiser, x: Array, key: PRNGKeyArray) -> Any:
        """Sampler state carried between steps (e.g. a multistep history); default none."""
        return None

    @abc.abstractmethod
    def step(
        self, denoiser: Denoiser, i: Int[Array, ""], x: Array, state: Any, key: PRNGKeyArray
    ) -> tuple[Array, Any]:
        """Move x from ``sigmas[i]`` to ``sigmas[i + 1]``; returns (x, state)."""

    def step_nfe(self, i: Int[Array, ""]) -> Int[Array, ""]:
        """Denoiser calls made by step i (default 1)."""
        return jnp.asarray(1, jnp.int32)

    def integrate(self, denoiser, noise, key, save_trajectory):
        # every float leaf (schedule, eta, ...) in the noise's dtype, so the scan carry keeps its dtype
        sampler = jax.tree.map(lambda a: a.astype(noise.dtype) if eqx.is_inexact_array(a) else a, self)
        sig = sampler.sigmas
        if self.starts_at_infinity:  # row 0 of a trajectory is then the noise itself (x / sigma at inf)
            x = denoiser.at_infinity(noise) + sig[1] * noise
            first, head = 1, [noise[None], x[None]]
        else:
            x = sig[0] * noise
            first, head = 0, [x[None]]
        state = sampler.init(denoiser, x, key)

        def body(carry, i):
            x, state, nfe = carry
            x, state = sampler.step(denoiser, i, x, state, jax.random.fold_in(key, i))
            return (x, state, nfe + sampler.step_nfe(i)), (x if save_trajectory else None)

        steps = jnp.arange(first, self.num_steps)
        (x, _, nfe), traj = jax.lax.scan(body, (x, state, jnp.asarray(first, jnp.int32)), steps)
        if not save_trajectory:
            return Solution(x, nfe)
        trajectory = jnp.concatenate(head + [traj], axis=0)
        return Solution(x, nfe, trajectory, sig)


def ddim_step(x: Array, denoised: Array, sigma, sigma_next) -> Array:
    """Deterministic first-order step in EDM coordinates: x' = D + (sigma_next / sigma) (x - D).

    This is DDIM (eta = 0) and the Euler step of the probability-flow ODE. Computed as
    ``r x + (1 - r) D`` with ``r = sigma_next / sigma``: exact at sigma_next = 0 (returns D), and D is read
    once (XLA on CPU fused the two-use form ``D + r (x - D)`` 3-7x slower for cheap denoisers).
    """
    r = sigma_next / sigma
    return r * x + (1 - r) * denoised

