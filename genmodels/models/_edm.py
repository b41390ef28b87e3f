"""Models in the EDM coordinates: a preconditioned denoiser (EDM, VP, VE, iDDPM) and a score model."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int

from genmodels._arrays import number, rows
from genmodels.denoisers import AbstractPreconditioning, EDMPrecond
from genmodels.errors import ArgumentTypeError
from genmodels.models._common import call_net, safe_sigma, sigma_rows
from genmodels.protocols import AbstractDenoiserModel, HasScore


class EDMModel(nnx.Module, AbstractDenoiserModel):
    """D(x, sigma) = c_skip x + c_out F(c_in x, c_noise[, labels]) (Karras et al. 2022, Eq. 7).

    Args:
        net: the raw network F(x, noise_cond, labels=None) (e.g. ``gm.nets.MLP``, ``gm.nets.UNet``) or any
            callable F(x, noise_cond).
        sigma_data: standard deviation of the data (default 0.5); used by the default EDM
            preconditioning and as the default of ``gm.losses.edm_loss``. With an ``EDMPrecond`` given,
            its ``sigma_data`` is the model's. An array leaf: new values do not recompile.
        precond: a ``gm.denoisers`` preconditioning (EDMPrecond(sigma_data) when None; VPPrecond,
            VEPrecond, IDDPMPrecond give the other columns of EDM's Table 1).

    ``denoise(x, sigma, labels=None)`` with x of shape (batch, ...) and sigma a scalar or (batch,);
    D(x, 0) = x exactly. Pass it to ``gm.sample`` directly (or through ``gm.models.with_labels`` /
    ``gm.guidance.ClassifierFree`` when it is class conditional).
    """

    def __init__(self, net: Callable, sigma_data: float = 0.5, precond: AbstractPreconditioning | None = None):
        if not callable(net):
            raise ArgumentTypeError(
                f"net must be callable as net(x, noise_cond, labels=None), got {type(net).__name__}."
            )
        if precond is None:
            precond = EDMPrecond(sigma_data)
        elif not isinstance(precond, AbstractPreconditioning):
            raise ArgumentTypeError(f"precond must be a gm.denoisers preconditioning, got {type(precond).__name__}.")
        if isinstance(precond, EDMPrecond):
            sigma_data = precond.sigma_data
        self.net = net
        self.precond = nnx.data(precond)
        self.sigma_data = nnx.data(number("sigma_data", low=0.0)(sigma_data))

    def denoise(
        self, x: Float[Array, batch * dims], sigma, labels: Int[Array, " batch"] | None = None
    ) -> Float[Array, batch * dims]:
        sigma = sigma_rows(sigma, x)
        c_skip, c_out, c_in, c_noise = self.precond.coefficients(safe_sigma(sigma))
        out = rows(c_skip, x) * x + rows(c_out, x) * call_net(self.net, rows(c_in, x) * x, c_noise, labels)
        return jnp.where((sigma > 0).reshape(sigma.shape + (1,) * (x.ndim - 1)), out, x)

    def __call__(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        return self.denoise(x, sigma, labels)


class ScoreModel(nnx.Module, AbstractDenoiserModel, HasScore):
    """A score network in the EDM coordinates: s(x, sigma) = F(x, ln(sigma)/4[, labels]) / sigma.

    With ``divide_by_sigma=True`` (default) this is the NCSNv2 parameterisation (Song & Ermon 2020):
    the network output is divided by sigma, so ||s|| ~ 1/sigma comes for free; with False,
    s = F(x, ln(sigma)/4). The denoiser is D = x + sigma^2 s (= x + sigma F), exact at sigma = 0.
    """

    def __init__(self, net: Callable, *, divide_by_sigma: bool = True):
        if not callable(net):
            raise ArgumentTypeError(
                f"net must be callable as net(x, noise_cond, labels=None), got {type(net).__name__}."
            )
        self.net = net
        self.divide_by_sigma = bool(divide_by_sigma)

    def _raw(self, x, sigma, labels):
        return call_net(self.net, x, 0.25 * jnp.log(safe_sigma(sigma)), labels)

    def score(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        sigma = sigma_rows(sigma, x)
        f = self._raw(x, sigma, labels)
        return f / rows(sigma, x) if self.divide_by_sigma else f

    def denoise(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        sigma = sigma_rows(sigma, x)
        f = self._raw(x, sigma, labels)
        s = rows(sigma, x)
        return x + (s * f if self.divide_by_sigma else s**2 * f)

    def __call__(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        return self.denoise(x, sigma, labels)
