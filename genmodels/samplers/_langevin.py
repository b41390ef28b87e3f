"""Annealed Langevin dynamics (NCSN; Song & Ermon 2019, Algorithm 1)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genmodels._checks import check_count, check_positive, is_concrete
from genmodels.errors import ArgumentError
from genmodels.samplers._base import AbstractStepSampler, count_param, float_param, unit_cost


class AnnealedLangevin(AbstractStepSampler):
    """Langevin MCMC at each positive level of ``sigmas``, from the largest to the smallest.

    At level sigma_i, ``steps_per_level`` updates with score = (D(x, sigma_i) - x) / sigma_i^2:

        alpha_i = step_size sigma_i^2 / sigma_L^2,    x <- x + (alpha_i / 2) score + sqrt(alpha_i) z,

    sigma_L the smallest positive level. If the schedule ends in 0, the last step is the Tweedie
    denoising x <- D(x, sigma_L) of NCSNv2 (Song & Ermon 2020) instead of more Langevin steps.

    The sampler does not integrate between levels, so the levels map onto the step interface as
    follows: step i ends equilibrated at sigma_{i+1} (Langevin there, or the denoising step when
    sigma_{i+1} = 0), and the first step also runs the Langevin updates of the starting level sigma_0
    beforehand. Trajectory row 0 is the starting noise sigma_0 z, row i the state after level i; NFE is
    ``steps_per_level`` per positive level plus one for the final denoising. A schedule that starts
    at inf starts at sigma_1 from the exact limit D_inf(z) + sigma_1 z (see ``AbstractStepSampler``).

    Args:
        sigmas: descending schedule of noise levels (e.g. ``gm.schedules.log_uniform``).
        steps_per_level: Langevin updates per level (static: a loop length).
        step_size: > 0, the step size at the smallest level (NCSN's epsilon); step_size / sigma_L^2
            must be < 2 (NCSN: 2e-5 / 0.01^2 = 0.2).
    """

    steps_per_level: int = eqx.field(default=100, static=True, converter=count_param)
    step_size: Float[Array, ""] = eqx.field(default=2e-5, converter=float_param)

    def __check_init__(self):
        check_positive("step_size", self.step_size)
        check_count("steps_per_level", self.steps_per_level)
        if is_concrete(self.sigmas) and is_concrete(self.step_size):
            positive = np.asarray(self.sigmas)[np.asarray(self.sigmas) > 0]
            ratio = float(self.step_size) / float(positive.min()) ** 2
            if ratio >= 2.0:
                raise ArgumentError(
                    f"step_size={float(self.step_size):g} is too large for the smallest level "
                    f"sigma_L={float(positive.min()):g}: alpha_i / sigma_i^2 = step_size / sigma_L^2 = {ratio:g} must "
                    "be < 2 (NCSN uses 0.2), or the Langevin updates diverge or are grossly biased at the high "
                    "levels, where the score's curvature is about 1 / sigma_i^2."
                )

    @property
    def order(self) -> None:
        return None  # MCMC at each level, not a discretisation of one equation

    @property
    def deterministic(self) -> bool:
        return False

    @property
    def _first(self) -> int:
        return 1 if self.start_at_infinity else 0

    def _langevin(self, denoiser, x, sigma, key):
        sigma_last = jnp.where(self.sigmas[-1] > 0, self.sigmas[-1], self.sigmas[-2])
        alpha = self.step_size * (sigma / sigma_last) ** 2

        def update(k, x):
            score = (denoiser(x, sigma) - x) / sigma**2
            z = jax.random.normal(jax.random.fold_in(key, k), x.shape, x.dtype)
            return x + 0.5 * alpha * score + jnp.sqrt(alpha) * z

        return jax.lax.fori_loop(0, self.steps_per_level, update, x)

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        key_start, key_next = jax.random.split(key)
        x = jax.lax.cond(i == self._first, lambda x: self._langevin(denoiser, x, sigma, key_start), lambda x: x, x)
        x = jax.lax.cond(
            sigma_next > 0,
            lambda x: self._langevin(denoiser, x, sigma_next, key_next),
            lambda x: denoiser(x, sigma),
            x,
        )
        return x, state

    def step_nfe(self, i, evaluations=unit_cost):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        start = jnp.where(i == self._first, self.steps_per_level * evaluations(sigma), 0)
        later = jnp.where(sigma_next > 0, self.steps_per_level * evaluations(sigma_next), evaluations(sigma))
        return (start + later).astype(jnp.int32)
