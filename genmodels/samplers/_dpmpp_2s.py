"""DPM-Solver++(2S): the single-step second-order DPM-Solver++ (Lu et al. 2022, Algorithm 1), and its
ancestral version, as k-diffusion's ``sample_dpmpp_2s_ancestral``."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels._checks import check_positive
from genmodels.samplers._ancestral import step_noise
from genmodels.samplers._base import AbstractStepSampler, float_param, known_to_be, unit_cost


def _ancestral_levels(sigma, sigma_next, eta):
    """k-diffusion's ``get_ancestral_step``: sigma_up = min(sigma', eta sigma' sqrt(sigma^2 - sigma'^2) / sigma),
    sigma_down = sqrt(sigma'^2 - sigma_up^2); (sigma', 0) for eta = 0."""
    var_up = eta**2 * sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2
    sigma_up = jnp.minimum(sigma_next, jnp.sqrt(jnp.maximum(var_up, 0.0)))
    return jnp.sqrt(jnp.maximum(sigma_next**2 - sigma_up**2, 0.0)), sigma_up


class DPMSolverPP2S(AbstractStepSampler):
    """DPM-Solver++(2S) with the midpoint r = 1/2, and its ancestral version for eta > 0, as k-diffusion's
    ``sample_dpmpp_2s_ancestral`` (checked against k-diffusion 0.1.1.post1 and the paper's Algorithm 1).

    Step i goes from sigma to sigma_down (= sigma' for eta = 0; k-diffusion's ancestral split otherwise) through
    the geometric midpoint s = sqrt(sigma sigma_down) (halfway in lambda = -log sigma):

        u   = (s/sigma) x + (1 - s/sigma) D(x, sigma),
        x'  = (sigma_down/sigma) x + (1 - sigma_down/sigma) D(u, s)  +  s_noise sigma_up z,

    z standard normal from ``fold_in(key, i)``, drawn only when eta s_noise > 0. Where sigma_down = 0 (the
    step to sigma' = 0, or eta large enough that sigma_up reaches sigma') the step is x' = D(x, sigma), one
    call. NFE: 2 per step, 1 for such a step (``step_nfe``).

    ``order``: 2 for eta = 0; for eta > 0 none is stated (k-diffusion states none). Deterministic for
    eta = 0 or s_noise = 0.

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        eta: >= 0, ancestral noise (0 = deterministic 2S, the default; k-diffusion's default is 1).
        s_noise: >= 0, extra scale on the added noise.
    """

    eta: Float[Array, ""] = eqx.field(default=0.0, converter=float_param)
    s_noise: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)

    def __check_init__(self):
        check_positive("eta", self.eta, allow_zero=True)
        check_positive("s_noise", self.s_noise, allow_zero=True)

    @property
    def order(self) -> int | None:
        return 2 if known_to_be(self.eta, 0) else None

    @property
    def deterministic(self) -> bool:
        return known_to_be(self.eta, 0) or known_to_be(self.s_noise, 0)

    def _levels(self, i):
        """(sigma, sigma_down, sigma_up, midpoint s, whether the step has its second call) of step i."""
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        sigma_down, sigma_up = _ancestral_levels(sigma, sigma_next, self.eta)
        second = sigma_down > 0
        return sigma, sigma_down, sigma_up, jnp.sqrt(sigma * jnp.where(second, sigma_down, sigma)), second

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_down, sigma_up, s, second = self._levels(i)
        denoised = denoiser(x, sigma)
        r_s, r_down = s / sigma, sigma_down / sigma
        u = r_s * x + (1.0 - r_s) * denoised
        # the second call only where the step has one (a cond: a step to sigma_down = 0 makes one call); there
        # r_down = 0 and x' = D(x, sigma), the limit of the Euler step
        denoised_2 = jax.lax.cond(second, lambda u: denoiser(u, s), lambda u: denoised, u)
        noise = step_noise(key, x, self.eta * self.s_noise) * (self.s_noise * sigma_up)
        return r_down * x + (1.0 - r_down) * denoised_2 + noise, state

    def step_nfe(self, i, evaluations=unit_cost):
        sigma, _, _, s, second = self._levels(i)
        return evaluations(sigma) + jnp.where(second, evaluations(s), 0).astype(jnp.int32)
