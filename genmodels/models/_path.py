"""Models parameterised in a path's own coordinates (x_t, t): eps, v, score or flow-matching velocity."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from genmodels.denoisers import AbstractParameterization, DefinesLimit, PathDenoiser, Velocity
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.models._common import call_net, denoise, sigma_rows
from genmodels.paths import AbstractPath, Linear
from genmodels.protocols import AbstractPathModel, HasLimitAtInfinity


class PathModel(nnx.Module, AbstractPathModel):
    """A network that predicts ``parameterization`` at (x_t, t) on ``path``, x_t = a(t) x0 + b(t) eps.

    ``parameterization`` is a ``gm.denoisers`` value: ``Eps()`` (E[eps | x_t]), ``Score()``
    (grad log p_t(x_t)), ``V()`` (a eps - b x0), ``X0()`` (x0) or ``Velocity()`` (the flow-matching
    velocity dx_t/dt = a' x0 + b' eps; on the Linear path eps - x0: t = 0 is the data, t = 1 the noise;
    the default, with the Linear path).

    ``predict(x_t, t, labels=None)`` is the network itself, ``net(x_t, t[, labels])``;
    ``denoise(x, sigma, labels=None)`` converts it to the EDM denoiser (t = path.inverse_sigma(sigma),
    x_t = s(t) x), so ``gm.sample`` takes the model directly. With a parameterization that defines the
    limit at sigma = inf (``V``, ``Velocity``, ``X0``) the model is a ``gm.protocols.HasLimitAtInfinity``
    (its class is chosen at construction) and sampling can start at sigma = inf (t = t_max, e.g. the Linear
    and Cosine paths at t = 1); otherwise sampling must start at a finite sigma.
    """

    def __new__(cls, net=None, path=None, parameterization=None, *args, **kwargs):
        if cls is PathModel and (parameterization is None or isinstance(parameterization, DefinesLimit)):
            cls = _PathModelWithLimit
        return super().__new__(cls)

    def __init__(
        self, net: Callable, path: AbstractPath | None = None, parameterization: AbstractParameterization | None = None
    ):
        if not callable(net):
            raise ArgumentTypeError(f"net must be callable as net(x_t, t, labels=None), got {type(net).__name__}.")
        if parameterization is None:
            parameterization = Velocity()
        if not isinstance(parameterization, AbstractParameterization):
            raise ArgumentTypeError(
                "parameterization must be a gm.denoisers parameterization value (Eps(), V(), Score(), "
                f"Velocity(), X0()), got {parameterization!r}."
            )
        if path is None:
            if not isinstance(parameterization, Velocity):
                raise ArgumentError(f"a {type(parameterization).__name__}() model needs its path (e.g. gm.paths.VP()).")
            path = Linear()
        if not isinstance(path, AbstractPath):
            raise ArgumentTypeError(f"path must be a gm.paths path, got {type(path).__name__}.")
        self.net = net
        self.path = nnx.data(path)
        self.parameterization = nnx.data(parameterization)

    def predict(self, x_t: Float[Array, batch * dims], t, labels=None) -> Float[Array, batch * dims]:
        """The network's own prediction at (x_t, t); t a scalar or (batch,)."""
        return call_net(self.net, x_t, sigma_rows(t, x_t), labels)

    def _adapter(self, labels) -> PathDenoiser:
        return PathDenoiser(lambda x_t, t: self.predict(x_t, t, labels), self.path, self.parameterization)

    def denoise(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        return self._adapter(labels).denoise(x, sigma_rows(sigma, x))

    def __call__(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        return self.denoise(x, sigma, labels)


class _PathModelWithLimit(PathModel, HasLimitAtInfinity):
    def at_infinity(self, eps: Float[Array, batch * dims], labels=None) -> Float[Array, batch * dims]:
        """lim_{sigma -> inf} D(sigma eps, sigma): the network at t_max on x_t = b(t_max) eps."""
        return self._adapter(labels).at_infinity(eps)


def _same_path(p: AbstractPath, q: AbstractPath) -> bool:
    if p is q:
        return True
    if type(p) is not type(q):
        return False
    leaves = jax.tree_util.tree_leaves((p, q))
    if any(isinstance(v, jax.core.Tracer) for v in leaves):
        return True  # same class, traced hyperparameters: taken to be the model's own path
    return bool(eqx.tree_equal(p, q))


def velocity(model, x_t: Array, t, path: AbstractPath | None = None, labels=None) -> Array:
    """Velocity dx_t/dt = a' x0 + b' eps of ``path`` at (x_t, t).

    For a velocity ``PathModel`` on the same path this is the network itself; for any other model it is
    converted from the denoiser (x0 = D(x_t / a, sigma(t)), eps = (x_t - a x0) / b). Where sigma(t) = inf
    (t = t_max on the Linear and Cosine paths) the denoiser's ``at_infinity`` is used, and the result is
    NaN for models without one. ``path`` defaults to the model's own path. t must be where b(t) > 0
    unless the model is a native velocity model.
    """
    if path is None:
        if not isinstance(model, PathModel):
            raise ArgumentError("velocity(model, ...) needs the path for a model that is not a gm.models.PathModel.")
        path = model.path
    t = sigma_rows(t, x_t)
    if isinstance(model, PathModel) and isinstance(model.parameterization, Velocity) and _same_path(model.path, path):
        return model.predict(x_t, t, labels)

    def r(v):
        return v.reshape(v.shape + (1,) * (x_t.ndim - 1))

    a, b = path.alpha(t), path.noise_std(t)
    da, db = path.scale_deriv(t), path.noise_std_deriv(t)
    sigma = path.sigma(t)
    finite = jnp.isfinite(sigma)
    x_hat = x_t / r(jnp.where(finite, a, 1.0))
    d = denoise(model, x_hat, jnp.where(finite, sigma, 1.0), labels)
    if isinstance(model, HasLimitAtInfinity):
        eps_inf = x_t / r(jnp.where(b > 0, b, 1.0))
        d_inf = model.at_infinity(eps_inf, labels)
        d = jnp.where(r(finite), d, d_inf)
    else:
        d = jnp.where(r(finite), d, jnp.nan)
    eps = (x_t - r(a) * d) / r(b)
    return r(da) * d + r(db) * eps
