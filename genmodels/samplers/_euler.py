"""Euler sampler of the probability-flow ODE (EDM Algorithm 1 without the Heun correction)."""

from __future__ import annotations

from genmodels.samplers._base import AbstractStepSampler, ddim_step


class Euler(AbstractStepSampler):
    """First-order Euler steps of dx/dsigma = (x - D(x, sigma)) / sigma along ``sigmas``.

    x_{i+1} = x_i + (sigma_{i+1} - sigma_i) (x_i - D_i) / sigma_i, i.e. DDIM (eta = 0). NFE = steps.
    Deterministic, order 1.
    """

    @property
    def order(self) -> int:
        return 1

    @property
    def deterministic(self) -> bool:
        return True

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        return ddim_step(x, denoiser(x, sigma), sigma, sigma_next), state
