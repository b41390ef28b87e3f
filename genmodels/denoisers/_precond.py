"""Preconditioning of a raw network F into a denoiser (Karras et al. 2022, Table 1):

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma)).

Each preconditioning is a small immutable module whose ``coefficients(sigma)`` returns
(c_skip, c_out, c_in, c_noise); :func:`precondition` composes one with a network. Numbers are pytree
leaves (traced), so the same compiled program serves any sigma_data.
"""

from __future__ import annotations

import abc
import math
from typing import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genmodels._arrays import rows


class AbstractPreconditioning(eqx.Module):
    @abc.abstractmethod
    def coefficients(self, sigma) -> tuple[Array, Array, Array, Array]:
        """(c_skip, c_out, c_in, c_noise) at ``sigma`` (scalar or shape (batch,))."""


class EDMPrecond(AbstractPreconditioning):
    """c_skip = sd^2/(s^2+sd^2), c_out = s sd/sqrt(s^2+sd^2), c_in = 1/sqrt(s^2+sd^2), c_noise = ln(s)/4."""

    sigma_data: float = 0.5

    def coefficients(self, sigma):
        sigma = jnp.asarray(sigma)
        sd2 = self.sigma_data**2
        total = sigma**2 + sd2
        return sd2 / total, sigma * self.sigma_data / jnp.sqrt(total), 1.0 / jnp.sqrt(total), 0.25 * jnp.log(sigma)


class VPPrecond(AbstractPreconditioning):
    """c_skip = 1, c_out = -s, c_in = 1/sqrt(s^2+1), c_noise = (M - 1) t(s) with the VP t(sigma)."""

    beta_d: float = 19.9
    beta_min: float = 0.1
    M: int = eqx.field(default=1000, static=True)

    def coefficients(self, sigma):
        sigma = jnp.asarray(sigma)
        t = (jnp.sqrt(self.beta_min**2 + 2 * self.beta_d * jnp.log1p(sigma**2)) - self.beta_min) / self.beta_d
        return jnp.ones_like(sigma), -sigma, 1.0 / jnp.sqrt(sigma**2 + 1), (self.M - 1) * t


class VEPrecond(AbstractPreconditioning):
    """c_skip = 1, c_out = s, c_in = 1, c_noise = ln(s / 2)."""

    def coefficients(self, sigma):
        sigma = jnp.asarray(sigma)
        return jnp.ones_like(sigma), sigma, jnp.ones_like(sigma), jnp.log(0.5 * sigma)


def iddpm_sigmas(M: int = 1000, C1: float = 0.001, C2: float = 0.008) -> np.ndarray:
    """The iDDPM noise levels u_0 > u_1 > ... > u_M = 0 (EDM Table 1): u_M = 0 and
    u_{j-1} = sqrt((u_j^2 + 1) / max(abar(j-1) / abar(j), C1) - 1), abar(j) = sin^2(pi j / (2 M (C2 + 1)))."""

    def abar(j):
        return math.sin(0.5 * math.pi * j / M / (C2 + 1)) ** 2

    u = np.zeros(M + 1)
    for j in range(M, 0, -1):
        u[j - 1] = math.sqrt((u[j] ** 2 + 1) / max(abar(j - 1) / abar(j), C1) - 1)
    return u


class IDDPMPrecond(AbstractPreconditioning):
    """c_skip = 1, c_out = -s, c_in = 1/sqrt(s^2+1), c_noise = M - 1 - argmin_j |u_j - s|."""

    u: Float[Array, " M+1"] = eqx.field(default_factory=lambda: jnp.asarray(iddpm_sigmas()))

    def coefficients(self, sigma):
        sigma = jnp.asarray(sigma)
        m = self.u.shape[0] - 1
        j = jnp.argmin(jnp.abs(self.u - sigma[..., None]), axis=-1)
        return jnp.ones_like(sigma), -sigma, 1.0 / jnp.sqrt(sigma**2 + 1), (m - 1 - j).astype(sigma.dtype)


class Preconditioned(eqx.Module):
    """D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) for a raw network ``net(x, c_noise)``."""

    net: Callable
    precond: AbstractPreconditioning = EDMPrecond()

    def __call__(self, x: Float[Array, "batch *dims"], sigma) -> Float[Array, "batch *dims"]:
        sigma = jnp.broadcast_to(jnp.asarray(sigma, dtype=x.dtype), x.shape[:1])
        c_skip, c_out, c_in, c_noise = self.precond.coefficients(sigma)
        return rows(c_skip, x) * x + rows(c_out, x) * self.net(rows(c_in, x) * x, c_noise)


def precondition(net: Callable, precond: AbstractPreconditioning | None = None) -> Preconditioned:
    """Wrap a raw network ``net(x_in, c_noise) -> F`` into an EDM denoiser with ``precond`` (default EDM)."""
    return Preconditioned(net, EDMPrecond() if precond is None else precond)
