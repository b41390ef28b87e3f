"""DEIS, the time-polynomial Adams-Bashforth variant (tAB-DEIS; Zhang & Chen 2023)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genmodels._checks import check_count
from genmodels.samplers._ipndm import AbstractAdamsSampler, check_order, check_warm_start, lagrange_integrals
from genmodels.samplers._multistep import AbstractWarmStart, LowerOrderStart

# diff-sampler's ``edm2t`` constants: the VP schedule with sigma(eps_s) = 0.002 and sigma(1) = 80.
VP_EPS, VP_SIGMA_MIN, VP_SIGMA_MAX = 1e-3, 0.002, 80.0


def vp_constants(eps_s: float = VP_EPS, sigma_min: float = VP_SIGMA_MIN, sigma_max: float = VP_SIGMA_MAX):
    """(beta_d, beta_min) of the VP schedule sigma(t)^2 = exp(beta_d t^2 / 2 + beta_min t) - 1 through
    sigma(eps_s) = sigma_min and sigma(1) = sigma_max (EDM's VP parametrisation, as diff-sampler's edm2t)."""
    beta_d = 2.0 * (np.log(sigma_min**2 + 1.0) / eps_s - np.log(sigma_max**2 + 1.0)) / (eps_s - 1.0)
    beta_min = np.log(sigma_max**2 + 1.0) - 0.5 * beta_d
    return float(beta_d), float(beta_min)


def vp_time(sigma: Array) -> Array:
    """The VP time t(sigma) = (sqrt(beta_min^2 + 2 beta_d log(1 + sigma^2)) - beta_min) / beta_d."""
    beta_d, beta_min = vp_constants()
    return (jnp.sqrt(beta_min**2 + 2.0 * beta_d * jnp.log1p(sigma**2)) - beta_min) / beta_d


class DEIS(AbstractAdamsSampler):
    """tAB-DEIS: Adams-Bashforth on the noise prediction with a polynomial in the VP time; NFE = steps.

    With d = (x - D(x, sigma)) / sigma (the eps prediction; dx/dsigma = d on the probability-flow ODE), step
    i fits d by the polynomial in t through (t(sigma_{i-j}), d_{i-j}), j < p, p = min(order, i + 1), where
    t(sigma) is the VP time of diff-sampler's ``edm2t`` (:func:`vp_time`: the VP-SDE with
    sigma(1e-3) = 0.002 and sigma(1) = 80, beta_d ~ 17.54, beta_min ~ -0.004), and integrates it exactly
    against dsigma:

        x_{i+1} = x_i + sum_{j < p} C_{ij} d_{i-j},  C_{ij} = int_{sigma_i}^{sigma_{i+1}} L_j(t(s)) ds,

    L_j the Lagrange basis in t. diff-sampler computes C_{ij} as int L_j(tau) sigma'(tau) dtau by a Riemann
    sum over 10^4 points in tau; substituting s = sigma(tau) gives the same integral over sigma, whose
    integrand is smooth (no 1/sqrt singularity at sigma = 0), computed here inside the program by
    ``quadrature``-point Gauss-Legendre (with the default 16 points, relative error 1e-11 on an 8-step
    Karras grid to 0, 2e-8 on a 5-step one, against 200 points; diff-sampler's sums differ from these
    integrals by their own error, 1.4e-5 relative at 10^4 points). The order is ``order`` (polynomial degree + 1).

    A polynomial in sigma itself instead of t(sigma) is the linear multistep method (``LMS``, ``IPNDMV``);
    diffusers' ``DEISMultistepScheduler`` fits in log-rho, another variant (not this one).

    Reference checked: zju-pi/diff-sampler ``get_deis_coeff_list(deis_mode='tab')`` and ``deis_sampler``
    (first step Euler, no lower-order final steps there; ``lower_order_final`` here follows the other
    multistep samplers and changes nothing on 15 or more steps).

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        order: 1..4 (static), the number of d values combined.
        quadrature: Gauss-Legendre points per coefficient integral (static, >= 2).
        warm_start: :class:`LowerOrderStart` (default) or :class:`RungeKuttaStart`.
        lower_order_final: static; on schedules of fewer than 15 steps, step i uses order <= steps - i.
    """

    order: int = eqx.field(default=3, static=True)
    quadrature: int = eqx.field(default=16, static=True)
    warm_start: AbstractWarmStart = LowerOrderStart()
    lower_order_final: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        check_order(self.order, 4)
        check_count("quadrature", self.quadrature, minimum=2)
        check_warm_start(self, self.order)

    @property
    def history_length(self) -> int:
        return self.order

    def weights(self, sigmas: Float[Array, " k"], sigma_next, p):
        return lagrange_integrals(vp_time(sigmas), p, sigmas[0], sigma_next, vp_time, self.quadrature)
