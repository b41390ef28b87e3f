"""DPM-Solver++ multistep samplers (Lu et al. 2022), in k-diffusion's form.

Both work with the data prediction D and the log-SNR variable lambda = -log sigma, with step
h = lambda_{i+1} - lambda_i = log(sigma_i / sigma_{i+1}). The exact solution of the probability-flow ODE
over one step is x' = (sigma'/sigma) x + sigma' int e^lambda D dlambda; the solvers approximate D in
that integral by a polynomial through the current and previous denoiser outputs (the multistep
history, carried in the sampler state). The first step (no history) and any step to sigma = 0
(h = inf; it returns x' = D) are first order.

The third-order multistep update comes in two coefficient sets, chosen by a value
(``coefficients=CorrectedCoefficients()`` or ``PublishedCoefficients()``); see
:class:`AbstractDPMCoefficients` for the derivation and the measured orders.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels._checks import check_positive
from genmodels.errors import ArgumentTypeError
from genmodels.samplers._ancestral import step_noise
from genmodels.samplers._base import AbstractStepSampler, ddim_step, float_param, known_to_be


def check_option(name: str, value: Any, kind: type, example: str) -> None:
    """An option that is a value of a class (a coefficient set, a warm start): anything else is an
    :class:`~genmodels.errors.ArgumentTypeError` naming the option and an example value."""
    if not isinstance(value, kind):
        raise ArgumentTypeError(f"{name} must be a {kind.__name__} value such as {example}, got {value!r}.")


def check_static_bool(name: str, value: Any) -> None:
    """A static flag (``lower_order_final``) must be a Python bool."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False (static), got {value!r}.")


class AbstractDPMCoefficients(eqx.Module):
    """The coefficient set of the third-order multistep DPM-Solver++ update (a value, as optax's variants).

    Over one step, in lambda = -log sigma with h = lambda' - lambda (and h_eta = (1 + eta) h for the SDE
    variant; h_eta = h for the ODE), the exact solution is

        x' = e^{-h_eta} x + sum_k c_k D^{(k)},   c_0 = 1 - e^{-h_eta},  c_1 = h phi_2,  c_2 = -h^2 phi_3,

    with D^{(k)} the k-th lambda-derivative of the data prediction at the current point,
    phi_2 = (e^{-h_eta} - 1)/h_eta + 1 and phi_3 = phi_2/h_eta - 1/2 (c_2 = int_0^h e^{(1+eta)(s-h)} (1+eta)
    s^2/2 ds). From three outputs D_i, D_{i-1}, D_{i-2} (r0 = h_{i-1}/h, r1 = h_{i-2}/h) the divided
    differences d1_0 = (D_i - D_{i-1})/r0, d1_1 = (D_{i-1} - D_{i-2})/r1 give

        d1 = d1_0 + (d1_0 - d1_1) r0/(r0 + r1) = h D' + O(h^3),    d2 = (d1_0 - d1_1)/(r0 + r1) = h^2 D''/2 + O(h^3),

    and the update is x' = e^{-h_eta} x + c_0 D_i + phi_2 d1 - w phi_3 d2. Taylor consistency needs
    w phi_3 d2 = phi_3 h^2 D'', that is **w = 2** (:class:`CorrectedCoefficients`): local error O(h^4),
    global order 3. The authors' reference code (LuChengTHU/dpm-solver, ``dpm_solver_pytorch.py``,
    ``multistep_dpm_solver_third_update``, checked at commit 52bc3fb), k-diffusion's ``sample_dpmpp_3m_sde``
    and diffusers' ``DPMSolverMultistepScheduler.multistep_dpm_solver_third_order_update`` use **w = 1** (:class:`PublishedCoefficients`): the
    second-derivative term enters with half its weight, the local error is O(h^3) and the global order 2
    (measured in float64 with exact starting values: see ``docs/samplers.md``).
    """

    @property
    @abc.abstractmethod
    def d2_weight(self) -> float:
        """w, the weight of phi_3 d2 in the update."""

    @property
    @abc.abstractmethod
    def order(self) -> int:
        """The global order of the third-order update with exact starting values."""


class CorrectedCoefficients(AbstractDPMCoefficients):
    """w = 2: the Taylor-consistent third-order update (order 3). The default of ``DPMSolverPP3M``."""

    @property
    def d2_weight(self) -> float:
        return 2.0

    @property
    def order(self) -> int:
        return 3


class PublishedCoefficients(AbstractDPMCoefficients):
    """w = 1: the reference code's and k-diffusion's third-order update (order 2, see
    :class:`AbstractDPMCoefficients`). The default of ``DPMSolverPP3MSDE``, for agreement with k-diffusion."""

    @property
    def d2_weight(self) -> float:
        return 1.0

    @property
    def order(self) -> int:
        return 2


def dpm_multistep_update(
    x: Array, denoised: Array, d_1: Array, d_2: Array, h, h_1, h_2, h_eta, p: Int[Array, ""], d2_weight: float
) -> Array:
    """One DPM-Solver++ multistep update of order ``p`` (1, 2 or 3; traced) without noise:

    x' = e^{-h_eta} x + (1 - e^{-h_eta}) D_i  [+ phi_2 d1_0 for p = 2]  [+ phi_2 d1 - w phi_3 d2 for p = 3],

    with ``d_1``, ``d_2`` the outputs D_{i-1}, D_{i-2} (unused below their order), ``h``, ``h_1``, ``h_2``
    the steps h_i, h_{i-1}, h_{i-2} in lambda and w = ``d2_weight`` (see :class:`AbstractDPMCoefficients`).
    Shapes: ``x``, ``denoised``, ``d_1``, ``d_2`` alike; the rest scalars. The caller handles sigma' = 0."""
    decay = jnp.exp(-h_eta)
    x_new = decay * x + (1.0 - decay) * denoised
    phi_2 = jnp.expm1(-h_eta) / h_eta + 1.0
    phi_3 = phi_2 / h_eta - 0.5
    r0 = jnp.where(p >= 2, h_1, h) / h
    r1 = jnp.where(p >= 3, h_2, h) / h
    d1_0 = (denoised - d_1) / r0
    d1_1 = (d_1 - d_2) / r1
    third = phi_2 * (d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)) - d2_weight * phi_3 * (d1_0 - d1_1) / (r0 + r1)
    return x_new + jnp.where(p >= 3, third, jnp.where(p == 2, phi_2 * d1_0, 0.0))


def log_ratio(sigma, sigma_next):
    """h = log(sigma / sigma_next), with a finite stand-in (1) where sigma_next = 0 (unused there)."""
    last = sigma_next <= 0
    return jnp.where(last, 1.0, jnp.log(sigma / jnp.where(last, 1.0, sigma_next))), last


class DPMSolverPP2M(AbstractStepSampler):
    """DPM-Solver++(2M), as k-diffusion's ``sample_dpmpp_2m``: deterministic, second order, NFE = steps.

    With r = h_prev / h, the step is the first-order (DDIM) step with D replaced by the extrapolation
    D_d = (1 + 1/(2r)) D_i - (1/(2r)) D_{i-1}:

        x' = (sigma'/sigma) x + (1 - sigma'/sigma) D_d.

    State: (D_{i-1}, h_{i-1}, whether that history exists).
    """

    @property
    def order(self) -> int:
        return 2

    @property
    def deterministic(self) -> bool:
        return True

    def init(self, denoiser, x, key):
        return jnp.zeros_like(x), jnp.zeros((), x.dtype), jnp.asarray(False)

    def step(self, denoiser, i, x, state, key):
        old_denoised, h_last, has_old = state
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        denoised = denoiser(x, sigma)
        h, last = log_ratio(sigma, sigma_next)
        second = has_old & ~last
        c = 0.5 * h / jnp.where(second, h_last, h)  # 1 / (2 r)
        denoised_d = jnp.where(second, (1.0 + c) * denoised - c * old_denoised, denoised)
        return ddim_step(x, denoised_d, sigma, sigma_next), (denoised, h, jnp.asarray(True))


class DPMSolverPP3MSDE(AbstractStepSampler):
    """DPM-Solver++(3M) SDE, as k-diffusion's ``sample_dpmpp_3m_sde``. NFE = steps.

    With h_eta = (1 + eta) h, the first-order part is the exact solution of the SDE's linear drift,

        x' = e^{-h_eta} x + (1 - e^{-h_eta}) D_i + s_noise sigma' sqrt(1 - e^{-2 eta h}) z,

    (for eta = 1 exactly the DDPM ancestral step), corrected with divided differences of D in lambda:
    given one previous output (r = h_{i-1} / h), x' += phi_2 (D_i - D_{i-1}) / r; given two, the
    third-order update x' += phi_2 d1 - w phi_3 d2 of :func:`dpm_multistep_update`. A step to sigma = 0
    returns D. eta = 0 gives the deterministic DPM-Solver++(3M) with a first- and a second-order start
    (:class:`~genmodels.samplers.DPMSolverPP3M` adds the warm-start and lower-order-final options).

    ``coefficients`` chooses w: :class:`PublishedCoefficients` (default, w = 1: k-diffusion's and the
    DPM-Solver reference code's, so that results match k-diffusion; the ODE then converges with order 2)
    or :class:`CorrectedCoefficients` (w = 2, Taylor-consistent, order 3 with exact starting values);
    see :class:`AbstractDPMCoefficients`.

    k-diffusion draws the noise from a Brownian tree by default; here each step draws independent
    standard normals (the same law for the increments of disjoint intervals).

    ``order`` is the coefficients' order for eta = 0 (2 by default); for eta > 0 no order is stated
    (k-diffusion states none, and its weak error on a Gaussian, about 3e-3 at 64 steps, is below what
    the test suite can resolve by Monte Carlo). Deterministic for eta = 0 or s_noise = 0.

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        eta: >= 0, SDE stochasticity (0 = probability-flow ODE).
        s_noise: >= 0, extra scale on the added noise.
        coefficients: :class:`PublishedCoefficients` (default) or :class:`CorrectedCoefficients`.
    """

    eta: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)
    s_noise: Float[Array, ""] = eqx.field(default=1.0, converter=float_param)
    coefficients: AbstractDPMCoefficients = eqx.field(default=PublishedCoefficients(), kw_only=True)

    def __check_init__(self):
        check_positive("eta", self.eta, allow_zero=True)
        check_positive("s_noise", self.s_noise, allow_zero=True)
        check_option("coefficients", self.coefficients, AbstractDPMCoefficients, "CorrectedCoefficients()")

    @property
    def order(self) -> int | None:
        return self.coefficients.order if known_to_be(self.eta, 0) else None

    @property
    def deterministic(self) -> bool:
        return known_to_be(self.eta, 0) or known_to_be(self.s_noise, 0)

    def init(self, denoiser, x, key):
        zero = jnp.zeros((), x.dtype)
        return jnp.zeros_like(x), jnp.zeros_like(x), zero, zero, jnp.asarray(0, jnp.int32)

    def step(self, denoiser, i, x, state, key):
        d_1, d_2, h_1, h_2, n_hist = state
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        denoised = denoiser(x, sigma)
        h, last = log_ratio(sigma, sigma_next)
        h_eta = h * (1.0 + self.eta)
        weight = self.coefficients.d2_weight
        x_new = dpm_multistep_update(x, denoised, d_1, d_2, h, h_1, h_2, h_eta, n_hist + 1, weight)
        noise_std = sigma_next * jnp.sqrt(-jnp.expm1(-2.0 * self.eta * h)) * self.s_noise
        x_new = x_new + noise_std * step_noise(key, x, self.eta * self.s_noise)  # drawn only when used
        x_new = jnp.where(last, denoised, x_new)
        return x_new, (denoised, d_1, h, h_1, jnp.minimum(n_hist + 1, 2))
