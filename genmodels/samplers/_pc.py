"""Predictor-corrector sampler of score_sde (Song et al. 2021, Algorithm 2, VE form)."""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels._checks import check_count, check_known, check_positive
from genmodels.samplers._base import AbstractStepSampler, count_param, float_param, unit_cost


def _row_norms(v: Array) -> Array:
    """Per-sample Euclidean norms, shaped to broadcast against ``v`` (batch, *dims)."""
    flat = v.reshape(v.shape[0], -1)
    return jnp.linalg.norm(flat, axis=-1).reshape((-1,) + (1,) * (v.ndim - 1))


class PredictorCorrector(AbstractStepSampler):
    """Reverse-diffusion predictor with a Langevin corrector, score = (D(x, sigma) - x) / sigma^2.

    Step i (sigma = sigma_i, sigma' = sigma_{i+1}):

    1. ``corrector_steps`` Langevin steps at sigma: with fresh z and
       eps = 2 (snr ||z|| / ||score||)^2, x <- x + eps score + sqrt(2 eps) z;
    2. the reverse-diffusion predictor, x_mean = x + (sigma^2 - sigma'^2) score,
       x = x_mean + sqrt(sigma^2 - sigma'^2) z; on the step to sigma' = 0 no noise is added and the
       result is x_mean = D(x, sigma) (score_sde's noise removal).

    ``norms`` picks the corrector's step size. ``"batch"`` (default) averages the per-sample norms over
    the batch, as score_sde does: one step size per level for the whole batch, so a sample depends
    (weakly, O(1/batch)) on the other rows; it is the one sampler whose rows depend on the batch by
    design (docs/batch_invariance.md). ``"sample"`` uses each sample's own norms, so samples are
    independent of the batch, but the step size then depends on the state x, and Langevin dynamics with a
    state-dependent step eps(x) leaves p(x) / eps(x) ~ p(x) ||score(x)||^2 invariant instead of p:
    harmless in high dimension where ||score|| concentrates, strongly biased in 2-D (mass is pushed off
    the modes, where the score vanishes and the step blows up). ``"sigma"`` takes eps = 2 (snr sigma)^2,
    a function of the level only: independent of the batch and of x (so unbiased beyond the
    discretisation), and what the norm rule gives when sigma dominates the data's scale (||score|| ~
    sqrt(d) / sigma); below that it is smaller than the norm rule's step. NFE = (corrector_steps + 1) per
    step.

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        snr: > 0, the corrector's target signal-to-noise ratio.
        corrector_steps: Langevin steps per noise level (static: it sets a loop length).
        norms: ``"batch"``, ``"sample"`` or ``"sigma"`` (static), see above.
    """

    snr: Float[Array, ""] = eqx.field(default=0.16, converter=float_param)
    corrector_steps: int = eqx.field(default=1, static=True, converter=count_param)
    norms: Literal["batch", "sample", "sigma"] = eqx.field(default="batch", static=True)

    def __check_init__(self):
        check_positive("snr", self.snr)
        check_count("corrector_steps", self.corrector_steps, minimum=0)
        check_known("norms", self.norms, ("batch", "sample", "sigma"))

    @property
    def order(self) -> None:
        return None  # the Langevin corrector is MCMC, not a discretisation of one equation

    @property
    def deterministic(self) -> bool:
        return False

    def _norms(self, v):
        n = _row_norms(v)
        return jnp.mean(n) if self.norms == "batch" else n

    def _step_size(self, z, g, sigma):
        """The Langevin step eps for noise z and score g at level sigma (see ``norms``)."""
        if self.norms == "sigma":
            return 2.0 * (self.snr * sigma) ** 2
        tiny = jnp.finfo(z.dtype).tiny
        return 2.0 * (self.snr * self._norms(z) / jnp.maximum(self._norms(g), tiny)) ** 2

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]

        def score(x):
            return (denoiser(x, sigma) - x) / sigma**2

        def correct(k, x):
            z = jax.random.normal(jax.random.fold_in(key, k), x.shape, x.dtype)
            g = score(x)
            eps = self._step_size(z, g, sigma)
            return x + eps * g + jnp.sqrt(2.0 * eps) * z

        x = jax.lax.fori_loop(0, self.corrector_steps, correct, x)
        var = sigma**2 - sigma_next**2
        x_mean = x + var * score(x)

        def noisy(x_mean):  # the step to sigma_next = 0 draws no noise: a scalar branch, not a where
            z = jax.random.normal(jax.random.fold_in(key, self.corrector_steps), x.shape, x.dtype)
            return x_mean + jnp.sqrt(var) * z

        return jax.lax.cond(sigma_next > 0, noisy, lambda x_mean: x_mean, x_mean), state

    def step_nfe(self, i, evaluations=unit_cost):
        return (self.corrector_steps + 1) * evaluations(self.sigmas[i])
