"""Preconditioning of a raw network F into a denoiser (Karras et al. 2022, Table 1):

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma)).

Each preconditioning is a small immutable module whose ``coefficients(sigma)`` returns
(c_skip, c_out, c_in, c_noise); :func:`precondition` composes one with a network. Numbers are pytree
leaves (traced, see ``genmodels._arrays``), so the same compiled program serves any sigma_data; they are
checked when the module is built. Expressions in the numbers alone (sigma_data^2, 2 beta_d) are formed
first, in float64 when the numbers are concrete, then cast to sigma's dtype.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from genmodels._arrays import Count, Number, RealScalar, check_number, floating, like, number, rows, to_leaf
from genmodels._checks import as_sigma_schedule, check_count
from genmodels.errors import ArgumentError


class AbstractPreconditioning(eqx.Module):
    """A preconditioning: ``coefficients(sigma)`` gives (c_skip, c_out, c_in, c_noise) elementwise, each of
    sigma's shape and floating dtype (its numbers are cast to that dtype where used)."""

    @abc.abstractmethod
    def coefficients(self, sigma: ArrayLike) -> tuple[Array, Array, Array, Array]:
        """(c_skip, c_out, c_in, c_noise) at ``sigma`` (scalar or shape (batch,))."""


class EDMPrecond(AbstractPreconditioning):
    """c_skip = sd^2/(s^2+sd^2), c_out = s sd/sqrt(s^2+sd^2), c_in = 1/sqrt(s^2+sd^2), c_noise = ln(s)/4.

    ``sigma_data`` (sd, default 0.5) must be finite and > 0.
    """

    sigma_data: Number = eqx.field(default=0.5, converter=number("sigma_data", low=0.0))

    def coefficients(self, sigma: ArrayLike) -> tuple[Array, Array, Array, Array]:
        sigma = floating(sigma)
        sd, sd2 = like(self.sigma_data, sigma), like(self.sigma_data**2, sigma)
        total = sigma**2 + sd2
        return sd2 / total, sigma * sd / jnp.sqrt(total), 1.0 / jnp.sqrt(total), 0.25 * jnp.log(sigma)


class VPPrecond(AbstractPreconditioning):
    """c_skip = 1, c_out = -s, c_in = 1/sqrt(s^2+1), c_noise = (M - 1) t(s) with the VP t(sigma):
    t(s) = (sqrt(beta_min^2 + 2 beta_d ln(1 + s^2)) - beta_min) / beta_d.

    ``beta_d`` > 0, ``beta_min`` >= 0 and ``M`` >= 1 (the number of discrete training times, used only as
    a scale of c_noise, so it is a traced number as well).
    """

    beta_d: Number = eqx.field(default=19.9, converter=number("beta_d", low=0.0))
    beta_min: Number = eqx.field(default=0.1, converter=number("beta_min", low=0.0, open_low=False))
    M: Number = eqx.field(default=1000, converter=number("M", low=1.0, open_low=False))

    def coefficients(self, sigma: ArrayLike) -> tuple[Array, Array, Array, Array]:
        sigma = floating(sigma)
        b0, b0_sq, two_bd = (like(v, sigma) for v in (self.beta_min, self.beta_min**2, 2 * self.beta_d))
        t = (jnp.sqrt(b0_sq + two_bd * jnp.log1p(sigma**2)) - b0) / like(self.beta_d, sigma)
        return jnp.ones_like(sigma), -sigma, 1.0 / jnp.sqrt(sigma**2 + 1), like(self.M - 1, sigma) * t


class VEPrecond(AbstractPreconditioning):
    """c_skip = 1, c_out = s, c_in = 1, c_noise = ln(s / 2)."""

    def coefficients(self, sigma: ArrayLike) -> tuple[Array, Array, Array, Array]:
        sigma = floating(sigma)
        return jnp.ones_like(sigma), sigma, jnp.ones_like(sigma), jnp.log(0.5 * sigma)


def iddpm_sigmas(M: Count = 1000, C1: RealScalar = 0.001, C2: RealScalar = 0.008) -> Float[np.ndarray, " levels"]:
    """The iDDPM noise levels u_0 > u_1 > ... > u_M = 0 (EDM Table 1): u_M = 0 and
    u_{j-1} = sqrt((u_j^2 + 1) / max(abar(j-1) / abar(j), C1) - 1), abar(j) = sin^2(pi j / (2 M (C2 + 1))).

    ``M`` (an int >= 1) sets the length, so it is static; C1 in (0, 1] and C2 >= 0 are finite numbers.
    """
    M = check_count("M", M)
    check_number("C1", C1, low=0.0, high=1.0, open_high=False)
    check_number("C2", C2, low=0.0, open_low=False)
    C1, C2 = float(C1), float(C2)

    def abar(j):
        return math.sin(0.5 * math.pi * j / M / (C2 + 1)) ** 2

    u = np.zeros(M + 1)
    for j in range(M, 0, -1):
        u[j - 1] = math.sqrt((u[j] ** 2 + 1) / max(abar(j - 1) / abar(j), C1) - 1)
    return u


def _iddpm_table(u):
    u = to_leaf("u", u, ndim=1)
    if u.shape[0] < 2:
        raise ArgumentError(f"u must hold at least 2 noise levels (u_0 > ... > u_M = 0), got {u.shape[0]}.")
    if isinstance(u, np.ndarray):
        as_sigma_schedule(u, "u", allow_inf_start=False)
    return u


class IDDPMPrecond(AbstractPreconditioning):
    """c_skip = 1, c_out = -s, c_in = 1/sqrt(s^2+1), c_noise = M - 1 - argmin_j |u_j - s|.

    ``u`` (default :func:`iddpm_sigmas`) is the descending table u_0 > ... > u_M; its length sets the shape
    of the search, its values are a leaf like the other preconditionings' numbers.
    """

    u: Float[ArrayLike, " M_plus_1"] = eqx.field(default_factory=iddpm_sigmas, converter=_iddpm_table)

    def coefficients(self, sigma: ArrayLike) -> tuple[Array, Array, Array, Array]:
        sigma = floating(sigma)
        u = like(self.u, sigma)
        m = u.shape[0] - 1
        j = jnp.argmin(jnp.abs(u - sigma[..., None]), axis=-1)
        return jnp.ones_like(sigma), -sigma, 1.0 / jnp.sqrt(sigma**2 + 1), (m - 1 - j).astype(sigma.dtype)


class Preconditioned(eqx.Module):
    """D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) for a raw network ``net(x, c_noise)``."""

    net: Callable
    precond: AbstractPreconditioning = EDMPrecond()

    def __call__(self, x: Float[Array, batch * dims], sigma) -> Float[Array, batch * dims]:
        sigma = jnp.broadcast_to(jnp.asarray(sigma, dtype=x.dtype), x.shape[:1])
        c_skip, c_out, c_in, c_noise = self.precond.coefficients(sigma)
        return rows(c_skip, x) * x + rows(c_out, x) * self.net(rows(c_in, x) * x, c_noise)


def precondition(net: Callable, precond: AbstractPreconditioning | None = None) -> Preconditioned:
    """Wrap a raw network ``net(x_in, c_noise) -> F`` into an EDM denoiser with ``precond`` (default EDM)."""
    return Preconditioned(net, EDMPrecond() if precond is None else precond)
