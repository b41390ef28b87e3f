"""Euler-Maruyama on the reverse-time variance-exploding SDE, with sigma as the time variable."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genmodels.samplers._base import AbstractStepSampler


class EulerMaruyama(AbstractStepSampler):
    """Euler-Maruyama steps of the reverse VE SDE (Song et al. 2021) in the EDM coordinates.

    The forward process x = x0 + sigma eps is dx = sqrt(2 sigma) dW with sigma as time; its reverse,
    run from high to low sigma, is dx = -2 sigma score(x, sigma) dsigma + sqrt(2 sigma) dW. One step
    from sigma to sigma' < sigma, with score = (D(x, sigma) - x) / sigma^2, is

        x' = x + 2 sigma (sigma - sigma') score + sqrt(2 sigma (sigma - sigma')) z.

    The step to sigma' = 0 is instead the Tweedie denoising x' = D(x, sigma) = x + sigma^2 score, the
    mean of x0 given x (as score_sde's noise-removal step): an Euler-Maruyama step there would add noise
    of std sqrt(2) sigma. Stochastic, weak order 1; it needs many more steps than the ODE samplers.
    NFE = steps.
    """

    @property
    def order(self) -> int:
        return 1

    @property
    def deterministic(self) -> bool:
        return False

    def step(self, denoiser, i, x, state, key):
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        denoised = denoiser(x, sigma)

        def noisy(denoised):  # the last step (sigma_next = 0) draws no noise: a scalar branch, not a where
            ds = sigma - sigma_next
            score = (denoised - x) / sigma**2
            z = jax.random.normal(key, x.shape, x.dtype)
            return x + 2.0 * sigma * ds * score + jnp.sqrt(2.0 * sigma * ds) * z

        return jax.lax.cond(sigma_next > 0, noisy, lambda denoised: denoised, denoised), state
