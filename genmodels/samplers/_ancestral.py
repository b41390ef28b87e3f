"""Ancestral samplers: DDIM (Song et al. 2021) and Euler ancestral (k-diffusion), one step function.

In the EDM coordinates x = x0 + sigma eps, DDIM with alpha_bar = 1 / (1 + sigma^2) is an ancestral step.
Writing x_vp = sqrt(alpha_bar) x, DDIM's update

    x_vp' = sqrt(ab') x0_hat + sqrt(1 - ab' - s^2) eps_hat + s z,
    s = eta sqrt((1 - ab') / (1 - ab)) sqrt(1 - ab / ab'),

divided by sqrt(ab') becomes, with eps_hat = (x - D) / sigma and (1 - ab') / ab' = sigma_next^2,

    x' = D + (sigma_down / sigma) (x - D) + sigma_up z,
    sigma_up^2 = s^2 / ab' = eta^2 sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2,
    sigma_down^2 = sigma_next^2 - sigma_up^2,

which is k-diffusion's ``get_ancestral_step`` followed by an Euler step to sigma_down and fresh noise of
std sigma_up. ``sigma_up`` is capped at sigma_next (only reached for eta > 1). At sigma_next = 0 both
vanish and x' = D.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels._checks import check_positive, is_concrete
from genmodels.samplers._base import AbstractStepSampler, float_param, known_to_be


def ancestral_step(x: Array, denoised: Array, sigma, sigma_next, eta, z: Array) -> Array:
    """x' = D + (sigma_down / sigma) (x - D) + sigma_up z (see the module docstring); z is standard
    normal noise already scaled by any s_noise."""
    var_up = eta**2 * sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2
    sigma_up = jnp.minimum(sigma_next, jnp.sqrt(jnp.maximum(var_up, 0.0)))
    sigma_down = jnp.sqrt(jnp.maximum(sigma_next**2 - sigma_up**2, 0.0))
    r = sigma_down / sigma  # r x + (1 - r) D: D read once (see ddim_step)
    return r * x + (1 - r) * denoised + sigma_up * z


def _eta_in_unit_interval(eta) -> bool:
    """0 <= eta <= 1, known now: DDIM's family of marginal-preserving steps (above 1, sigma_up is capped)."""
    return is_concrete(eta) and bool(0 <= float(eta) <= 1)


def step_noise(key, x: Array, eta) -> Array:
    """Standard normal noise shaped like ``x``, drawn only when ``eta > 0`` (zeros otherwise, where the
    ancestral step does not use it): deterministic DDIM pays for no random numbers."""
    return jax.lax.cond(eta > 0, lambda: jax.random.normal(key, x.shape, x.dtype), lambda: jnp.zeros_like(x))


class DDIM(AbstractStepSampler):
    """DDIM with stochasticity ``eta``: eta = 0 (default) is deterministic DDIM, identical to ``Euler``;
    eta = 1 is the DDPM posterior (ancestral) sampler. NFE = steps. Order 1 for 0 <= eta <= 1: the
    probability-flow ODE's global error for eta = 0, the weak order of the discretised reverse SDE (whose
    noise grows with eta and keeps the same marginals) for eta > 0.

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        eta: >= 0, the DDIM noise scale.
    """

    eta: Float[Array, ""] = eqx.field(default=0.0, converter=float_param)

    def __check_init__(self):
        check_positive("eta", self.eta, allow_zero=True)

    @property
    def order(self) -> int | None:
        return 1 if _eta_in_unit_interval(self.eta) else None

    @property
    def deterministic(self) -> bool:
        return known_to_be(self.eta, 0)

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        z = step_noise(key, x, self.eta)
        return ancestral_step(x, denoiser(x, sigma), sigma, sigma_next, self.eta, z), state


class EulerAncestral(AbstractStepSampler):
    """k-diffusion's ``sample_euler_ancestral``: the same ancestral step as :class:`DDIM` (default
    eta = 1), with the fresh noise multiplied by ``s_noise``. NFE = steps. Deterministic for eta = 0
    (Euler) or s_noise = 0; order 1 as :class:`DDIM` for 0 <= eta <= 1 and s_noise = 1, no stated order
    for s_noise != 1 (another amount of noise than the reverse SDE's).

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        eta: >= 0, fraction of the DDPM posterior noise.
        s_noise: >= 0, extra scale on the added noise (1 = exact).
    """

    eta: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)
    s_noise: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)

    def __check_init__(self):
        check_positive("eta", self.eta, allow_zero=True)
        check_positive("s_noise", self.s_noise, allow_zero=True)

    @property
    def order(self) -> int | None:
        exact = known_to_be(self.eta, 0) or known_to_be(self.s_noise, 1)
        return 1 if exact and _eta_in_unit_interval(self.eta) else None

    @property
    def deterministic(self) -> bool:
        return known_to_be(self.eta, 0) or known_to_be(self.s_noise, 0)

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        z = self.s_noise * step_noise(key, x, self.eta)
        return ancestral_step(x, denoiser(x, sigma), sigma, sigma_next, self.eta, z), state
