"""DPM-Solver++(2M) SDE, as k-diffusion's ``sample_dpmpp_2m_sde`` (Lu et al. 2022, SDE variant)."""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels._checks import check_positive
from genmodels.samplers._ancestral import step_noise
from genmodels.samplers._base import AbstractStepSampler, float_param, known_to_be
from genmodels.samplers._dpmsolver import check_option, log_ratio


class AbstractSolverType(eqx.Module):
    """How DPM-Solver++(2M) SDE weighs its first divided difference d = (D_i - D_{i-1}) h / h_{i-1}
    (k-diffusion's ``solver_type``, a value here)."""

    @abc.abstractmethod
    def weight(self, h_eta: Array) -> Array:
        """The coefficient of d in the update, for the step h_eta = (1 + eta) h."""


class MidpointType(AbstractSolverType):
    """k-diffusion's ``solver_type="midpoint"`` (its default; DPM-Solver's own 2M form):
    weight (1 - e^{-h_eta}) / 2."""

    def weight(self, h_eta):
        return -0.5 * jnp.expm1(-h_eta)


class HeunType(AbstractSolverType):
    """k-diffusion's ``solver_type="heun"`` (the reference code's ``taylor`` form):
    weight phi_2 = (e^{-h_eta} - 1) / h_eta + 1."""

    def weight(self, h_eta):
        return jnp.expm1(-h_eta) / h_eta + 1.0


class DPMSolverPP2MSDE(AbstractStepSampler):
    """DPM-Solver++(2M) SDE, as k-diffusion's ``sample_dpmpp_2m_sde`` (checked against k-diffusion 0.1.1.post1,
    ``k_diffusion/sampling.py``). NFE = steps.

    In lambda = -log sigma with h = log(sigma / sigma') and h_eta = (1 + eta) h, step i calls D_i = D(x, sigma_i)
    and takes

        x' = e^{-h_eta} x + (1 - e^{-h_eta}) D_i + c(h_eta) (D_i - D_{i-1}) h / h_{i-1}
             + s_noise sigma' sqrt(1 - e^{-2 eta h}) z,

    where the D_{i-1} term is absent on the first step, c is the ``solver_type``'s weight
    (:class:`MidpointType`: (1 - e^{-h_eta})/2, default; :class:`HeunType`: phi_2(h_eta)) and z is standard
    normal, drawn from ``fold_in(key, i)`` (k-diffusion defaults to a Brownian tree: the same law for the
    increments of disjoint intervals). e^{-h_eta} x is k-diffusion's (sigma'/sigma) e^{-eta h} x. A step to
    sigma' = 0 returns D_i. eta = 1 makes the first-order part the DDPM ancestral step; eta = 0 is the
    deterministic DPM-Solver++(2M) (with ``MidpointType``, :class:`~genmodels.samplers.DPMSolverPP2M`'s update).

    ``order``: 2 for eta = 0 (the probability-flow ODE's global error); for eta > 0 none is stated (k-diffusion
    states none). Deterministic for eta = 0 or s_noise = 0 (no noise is drawn then).

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        eta: >= 0, SDE stochasticity (0 = probability-flow ODE).
        s_noise: >= 0, extra scale on the added noise.
        solver_type: :class:`MidpointType` (default) or :class:`HeunType`.
    """

    eta: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)
    s_noise: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)
    solver_type: AbstractSolverType = eqx.field(default=MidpointType(), kw_only=True)

    def __check_init__(self):
        check_positive("eta", self.eta, allow_zero=True)
        check_positive("s_noise", self.s_noise, allow_zero=True)
        check_option("solver_type", self.solver_type, AbstractSolverType, "MidpointType()")

    @property
    def order(self) -> int | None:
        return 2 if known_to_be(self.eta, 0) else None

    @property
    def deterministic(self) -> bool:
        return known_to_be(self.eta, 0) or known_to_be(self.s_noise, 0)

    def init(self, denoiser, x, key):
        return jnp.zeros_like(x), jnp.ones((), x.dtype), jnp.asarray(False)

    def step(self, denoiser, i, x, state, key):
        old_denoised, h_last, has_old = state
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        denoised = denoiser(x, sigma)
        h, last = log_ratio(sigma, sigma_next)
        h_eta = h * (1.0 + self.eta)
        decay = jnp.exp(-h_eta)
        x_new = decay * x + (1.0 - decay) * denoised
        correction = self.solver_type.weight(h_eta) * (h / h_last) * (denoised - old_denoised)
        x_new = x_new + jnp.where(has_old, correction, 0.0)
        noise_std = sigma_next * jnp.sqrt(-jnp.expm1(-2.0 * self.eta * h)) * self.s_noise
        x_new = x_new + noise_std * step_noise(key, x, self.eta * self.s_noise)  # drawn only when used
        return jnp.where(last, denoised, x_new), (denoised, h, jnp.asarray(True))
