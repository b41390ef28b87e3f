"""Adapters from path-native parameterisations to EDM denoisers, and back.

The samplers ask a model for the denoiser D(x_hat, sigma) = E[x0 | x_hat] with x_hat = x0 + sigma eps
(the EDM / k-diffusion convention). A function ``fn(x_t, t)`` trained in a path's own coordinates
x_t = a(t) x0 + b(t) eps (a = s, b = s sigma) predicts what its parameterization value says
(``gm.denoisers.Eps()``, ``V()``, ``Score()``, ``Velocity()``, ``X0()``; see ``_parameterization.py``).
:class:`PathDenoiser` turns it into a denoiser: t = path.inverse_sigma(sigma), x_t = s(t) x_hat,
D = parameterization.to_x0(path, t, x_t, fn(x_t, t)). ``from_score``, ``from_eps``, ``from_v`` and
``from_velocity`` are its four common spellings.

Parameterizations that stay finite where a(t) = 0 (``X0``, ``V``, ``Velocity``) give a denoiser with the
limit at sigma = inf (``gm.protocols.HasLimitAtInfinity``): there x_t = b(t_max) eps is finite, so a
flow-matching model can start from pure noise at t = 1 exactly.

:class:`CallableDenoiser` is the one adapter for plain callables ``D(x, sigma)``; :func:`as_denoiser`
applies it at the boundary of the samplers, the likelihood and the losses.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels._arrays import rows
from genmodels.denoisers._parameterization import AbstractParameterization, DefinesLimit, Eps, Score, V, Velocity
from genmodels.errors import ArgumentTypeError, ProtocolError
from genmodels.paths import EDM, AbstractPath, Linear
from genmodels.protocols import AbstractDenoiserModel, HasLimitAtInfinity


def _no_labels(labels, owner: str) -> None:
    if labels is not None:
        raise ArgumentTypeError(f"labels were given, but {owner} is an unconditional denoiser fn(x_t, t).")


class PathDenoiser(eqx.Module, AbstractDenoiserModel):
    """The EDM denoiser of ``fn(x_t, t)``, a predictor in ``parameterization`` on ``path``.

    ``denoise(x, sigma)`` (also ``__call__``): t = path.inverse_sigma(sigma), x_t = s(t) x,
    D = parameterization.to_x0(path, t, x_t, fn(x_t, t)); sigma a scalar or one value per row. When the
    parameterization :class:`DefinesLimit`, the instance is a ``HasLimitAtInfinity`` (its class is chosen
    at construction).
    """

    fn: Callable
    path: AbstractPath
    parameterization: AbstractParameterization

    def __new__(cls, fn=None, path=None, parameterization=None, *args, **kwargs):
        if cls is PathDenoiser and isinstance(parameterization, DefinesLimit):
            cls = _PathDenoiserWithLimit
        return super().__new__(cls)

    def __init__(self, fn: Callable, path: AbstractPath, parameterization: AbstractParameterization):
        if not callable(fn):
            raise ArgumentTypeError(f"fn must be callable as fn(x_t, t), got {type(fn).__name__}.")
        if not isinstance(path, AbstractPath):
            raise ArgumentTypeError(f"path must be a gm.paths path, got {type(path).__name__}.")
        if not isinstance(parameterization, AbstractParameterization):
            raise ArgumentTypeError(
                "parameterization must be a gm.denoisers parameterization value (Eps(), V(), Score(), "
                f"Velocity(), X0()), got {parameterization!r}."
            )
        self.fn, self.path, self.parameterization = fn, path, parameterization

    def denoise(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        _no_labels(labels, type(self).__name__)
        t = jnp.asarray(self.path.inverse_sigma(sigma), dtype=x.dtype)
        x_t = x * rows(self.path.scale(t), x)
        return self.parameterization.to_x0(self.path, t, x_t, self.fn(x_t, t))

    def __call__(self, x: Float[Array, batch * dims], sigma) -> Float[Array, batch * dims]:
        return self.denoise(x, sigma)


class _PathDenoiserWithLimit(PathDenoiser, HasLimitAtInfinity):
    def at_infinity(self, eps: Float[Array, batch * dims], labels=None) -> Float[Array, batch * dims]:
        """lim_{sigma -> inf} D(sigma eps, sigma): the predictor evaluated at t_max on x_t = b(t_max) eps."""
        _no_labels(labels, type(self).__name__)
        t = jnp.asarray(self.path.t_max, dtype=eps.dtype)
        x_t = eps * self.path.noise_std(t)
        return self.parameterization.to_x0(self.path, t, x_t, self.fn(x_t, t))


def from_score(score_fn: Callable, path: AbstractPath = EDM()) -> PathDenoiser:
    """Denoiser from a score model ``score_fn(x_t, t) = grad_{x_t} log p_t(x_t)`` on ``path``.

    With the default ``path=EDM()`` (s = 1, t = sigma) this is the usual D = x + sigma^2 score(x, sigma).
    """
    return PathDenoiser(score_fn, path, Score())


def from_eps(eps_fn: Callable, path: AbstractPath = EDM()) -> PathDenoiser:
    """Denoiser from an eps-prediction model ``eps_fn(x_t, t) = E[eps | x_t]`` on ``path``."""
    return PathDenoiser(eps_fn, path, Eps())


def from_v(v_fn: Callable, path: AbstractPath = EDM()) -> PathDenoiser:
    """Denoiser from a v-prediction model ``v_fn(x_t, t) = a eps - b x0`` on ``path`` (has the limit at inf)."""
    return PathDenoiser(v_fn, path, V())


def from_velocity(u_fn: Callable, path: AbstractPath = Linear()) -> PathDenoiser:
    """Denoiser from a flow-matching velocity ``u_fn(x_t, t) = dx_t/dt`` on ``path`` (default the Linear
    path, where x0 = x_t - t u); has the limit at sigma = inf."""
    return PathDenoiser(u_fn, path, Velocity())


class CallableDenoiser(eqx.Module, AbstractDenoiserModel):
    """A plain callable ``D(x, sigma)`` (or ``D(x, sigma, labels)``) seen as a denoiser model."""

    fn: Callable

    def denoise(self, x, sigma, labels=None):
        return self.fn(x, sigma) if labels is None else self.fn(x, sigma, labels)

    def __call__(self, x, sigma):
        return self.fn(x, sigma)


def _takes_two_arguments(fn: Callable) -> bool:
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: give them the benefit of the doubt
        return True
    return True


def as_denoiser(model: Any, name: str = "model") -> AbstractDenoiserModel:
    """``model`` as a denoiser model: a ``gm.protocols.AbstractDenoiserModel`` is returned as is, a plain
    callable ``D(x, sigma)`` is wrapped once in :class:`CallableDenoiser`; anything else is a ProtocolError.
    """
    if isinstance(model, AbstractDenoiserModel):
        return model
    if model is None or not callable(model):
        raise ProtocolError(
            f"{name} must be a denoiser: a gm.protocols.AbstractDenoiserModel (gm.models.EDMModel, "
            f"PathModel, a gm.targets mixture, ...) or a callable D(x, sigma) -> E[x0 | x]; got "
            f"{type(model).__name__}. Autoregressive models are sampled with gm.samplers.Ancestral()."
        )
    if not _takes_two_arguments(model):
        raise ProtocolError(
            f"{name} is a callable that cannot be called as D(x, sigma) (two positional arguments: the noisy "
            "batch and its noise level). Wrap a one-argument network, e.g. lambda x, sigma: net(x)."
        )
    return CallableDenoiser(model)


# ---- the other direction: a denoiser's output in each parameterisation -------------------------------


def score_from_denoised(x, sigma, denoised):
    """grad_{x_hat} log p_sigma(x_hat) = (D - x_hat) / sigma^2 (Tweedie)."""
    s = rows(sigma, x)
    return (denoised - x) / s**2


def eps_from_denoised(x, sigma, denoised):
    """E[eps | x_hat] = (x_hat - D) / sigma."""
    return (x - denoised) / rows(sigma, x)


def velocity_from_denoised(x_hat, sigma, denoised, path: AbstractPath):
    """Velocity dx_t/dt = a' x0 + b' eps of ``path`` at t = inverse_sigma(sigma), from a denoiser output."""
    t = path.inverse_sigma(sigma)
    eps = eps_from_denoised(x_hat, sigma, denoised)
    da, db = rows(path.scale_deriv(t), x_hat), rows(path.noise_std_deriv(t), x_hat)
    return da * denoised + db * eps


def v_from_denoised(x_hat, sigma, denoised, path: AbstractPath):
    """v = a eps - b x0 of ``path`` at t = inverse_sigma(sigma), from a denoiser output."""
    t = path.inverse_sigma(sigma)
    eps = eps_from_denoised(x_hat, sigma, denoised)
    a, b = rows(path.alpha(t), x_hat), rows(path.noise_std(t), x_hat)
    return a * eps - b * denoised
