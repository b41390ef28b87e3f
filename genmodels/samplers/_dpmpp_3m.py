"""DPM-Solver++(3M): the deterministic third-order multistep DPM-Solver++ (Lu et al. 2022)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from genmodels.samplers._dpmsolver import (
    AbstractDPMCoefficients,
    CorrectedCoefficients,
    check_option,
    check_static_bool,
    dpm_multistep_update,
    log_ratio,
)
from genmodels.samplers._multistep import (
    AbstractMultistepSampler,
    AbstractWarmStart,
    LowerOrderStart,
    effective_order,
    is_warm,
)


class DPMSolverPP3M(AbstractMultistepSampler):
    """DPM-Solver++(3M), deterministic: data prediction D, step h = log(sigma / sigma') in lambda = -log sigma,
    NFE = steps.

    Step i calls D_i = D(x, sigma_i) and, with order p (traced: the warm start and ``lower_order_final`` decide
    it), takes

        x' = (sigma'/sigma) x + (1 - sigma'/sigma) D_i                  (p = 1, DDIM),
           + phi_2 (D_i - D_{i-1}) / r0                                 (p = 2),
           + phi_2 d1 - w phi_3 d2  instead of the p = 2 term            (p = 3),

    with r0 = h_{i-1}/h, phi_2 = (e^{-h} - 1)/h + 1, phi_3 = phi_2/h - 1/2, and d1, d2 the divided differences
    of :class:`~genmodels.samplers.AbstractDPMCoefficients`, whose ``d2_weight`` w is 2 for
    :class:`~genmodels.samplers.CorrectedCoefficients` (default: Taylor-consistent, order 3) and 1 for
    :class:`~genmodels.samplers.PublishedCoefficients` (the authors' reference code ``dpm_solver_pytorch.py``,
    ``multistep_dpm_solver_third_update`` with ``algorithm_type="dpmsolver++"``, checked at LuChengTHU/dpm-solver
    commit 52bc3fb; k-diffusion's ``sample_dpmpp_3m_sde`` at eta = 0 is the same update: order 2, because its
    second-derivative term has half the weight the Taylor expansion needs). A step to sigma' = 0 returns D_i.

    With ``PublishedCoefficients()``, ``LowerOrderStart()`` and ``lower_order_final=False`` the samples equal
    ``DPMSolverPP3MSDE(sigmas, eta=0)``'s (tested).

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        coefficients: :class:`~genmodels.samplers.CorrectedCoefficients` (default) or
            :class:`~genmodels.samplers.PublishedCoefficients`.
        warm_start: how the first two steps are taken: ``LowerOrderStart()`` (default; orders 1, 2, as the
            reference code, k-diffusion and diffusers) or ``RungeKuttaStart()`` (exact starting values).
        lower_order_final: static; on schedules of fewer than 15 steps the last steps use order at most
            ``steps - i`` (diffusers' default, True).
    """

    coefficients: AbstractDPMCoefficients = eqx.field(default=CorrectedCoefficients(), kw_only=True)
    warm_start: AbstractWarmStart = eqx.field(default=LowerOrderStart(), kw_only=True)
    lower_order_final: bool = eqx.field(default=True, static=True, kw_only=True)

    def __check_init__(self):
        check_option("coefficients", self.coefficients, AbstractDPMCoefficients, "CorrectedCoefficients()")
        check_option("warm_start", self.warm_start, AbstractWarmStart, "LowerOrderStart()")
        check_static_bool("lower_order_final", self.lower_order_final)

    @property
    def order(self) -> int:
        return self.coefficients.order

    @property
    def deterministic(self) -> bool:
        return True

    def init(self, denoiser, x, key):
        # (D_{i-1}, D_{i-2}, their sigmas, how many are filled): separate arrays, shifted by renaming, not a
        # stacked History (whose concatenate copied 2 B d numbers per step: about 15 % more CPU time at 1,024 x 64)
        return jnp.zeros_like(x), jnp.zeros_like(x), jnp.ones((2,), x.dtype), jnp.asarray(0, jnp.int32)

    def step(self, denoiser, i, x, state, key):
        d_1, d_2, past_sigmas, count = state
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        denoised = denoiser(x, sigma)

        def multistep(x):
            h, last = log_ratio(sigma, sigma_next)
            p = effective_order(3, count, i, self.num_steps, self.lower_order_final)
            s_1, s_2 = past_sigmas[0], past_sigmas[1]
            h_1, h_2 = jnp.log(s_1 / sigma), jnp.log(s_2 / s_1)
            w = self.coefficients.d2_weight
            return jnp.where(last, denoised, dpm_multistep_update(x, denoised, d_1, d_2, h, h_1, h_2, h, p, w))

        warm = is_warm(self.warm_start, 3, count)
        x_new = self.warm_or(warm, multistep, denoiser, x, sigma, sigma_next, denoised)
        past_sigmas = jnp.stack([sigma, past_sigmas[0]])
        return x_new, (denoised, d_1, past_sigmas, jnp.minimum(count + 1, 2))

    @property
    def history_length(self) -> int:
        return 3
