"""Models parameterised in a path's own coordinates (x_t, t): eps, v, score or flow-matching velocity."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from genmodels._checks import check_known
from genmodels.denoisers import from_eps, from_score, from_v, from_velocity, score_from_denoised
from genmodels.models._common import call_net, denoise, sigma_rows
from genmodels.paths import AbstractPath, Linear

PARAMETERIZATIONS = ("eps", "v", "score", "velocity")
_ADAPTERS = {"eps": from_eps, "v": from_v, "score": from_score, "velocity": from_velocity}


class PathModel(nnx.Module):
    """A network that predicts ``parameterization`` at (x_t, t) on ``path``, x_t = a(t) x0 + b(t) eps:

    * ``"eps"``: E[eps | x_t];  ``"score"``: grad log p_t(x_t);  ``"v"``: a eps - b x0;
    * ``"velocity"``: the flow-matching velocity dx_t/dt = a' x0 + b' eps (on the Linear path
      eps - x0: t = 0 is the data, t = 1 the noise).

    ``predict(x_t, t, labels=None)`` is the network itself, ``net(x_t, t[, labels])``;
    ``denoise(x, sigma, labels=None)`` converts it to the EDM denoiser through ``gm.denoisers``
    (t = path.inverse_sigma(sigma), x_t = s(t) x), so ``gm.sample`` takes the model directly. ``"v"`` and
    ``"velocity"`` models also have ``at_infinity(eps)``, so flow-matching models start at sigma = inf
    (t = t_max, e.g. the Linear and Cosine paths at t = 1); for the other two ``at_infinity`` does not
    exist (``hasattr`` is False) and sampling must start at a finite sigma.
    """

    def __init__(self, net: Callable, path: AbstractPath | None = None, parameterization: str = "velocity"):
        if not callable(net):
            raise TypeError(f"net must be callable as net(x_t, t, labels=None), got {type(net).__name__}.")
        check_known("parameterization", parameterization, PARAMETERIZATIONS)
        if path is None:
            if parameterization != "velocity":
                raise ValueError(f"a {parameterization!r} model needs its path (e.g. gm.paths.VP()).")
            path = Linear()
        if not isinstance(path, AbstractPath):
            raise TypeError(f"path must be a gm.paths path, got {type(path).__name__}.")
        self.net = net
        self.path = nnx.data(path)
        self.parameterization = parameterization

    def predict(self, x_t: Float[Array, "batch *dims"], t, labels=None) -> Float[Array, "batch *dims"]:
        """The network's own prediction at (x_t, t); t a scalar or (batch,)."""
        return call_net(self.net, x_t, sigma_rows(t, x_t), labels)

    def _adapter(self, labels):
        return _ADAPTERS[self.parameterization](lambda x_t, t: self.predict(x_t, t, labels), self.path)

    def denoise(self, x: Float[Array, "batch *dims"], sigma, labels=None) -> Float[Array, "batch *dims"]:
        return self._adapter(labels)(x, sigma_rows(sigma, x))

    __call__ = denoise

    def score(self, x, sigma, labels=None):
        """Score of the scaled variable x = x_t / s(t): (D - x) / sigma^2."""
        sigma = sigma_rows(sigma, x)
        return score_from_denoised(x, sigma, self.denoise(x, sigma, labels))

    @property
    def at_infinity(self):
        """lim_{sigma -> inf} D(sigma eps, sigma), for ``"v"`` and ``"velocity"`` models only."""
        if self.parameterization not in ("v", "velocity"):
            raise AttributeError(
                f"a {self.parameterization!r} model has no limit at sigma = inf; start sampling at a finite sigma."
            )
        return self._at_infinity

    def _at_infinity(self, eps, labels=None):
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
            raise ValueError("velocity(model, ...) needs the path for a model that is not a gm.models.PathModel.")
        path = model.path
    t = sigma_rows(t, x_t)
    if isinstance(model, PathModel) and model.parameterization == "velocity" and _same_path(model.path, path):
        return model.predict(x_t, t, labels)

    def r(v):
        return v.reshape(v.shape + (1,) * (x_t.ndim - 1))

    a, b = path.alpha(t), path.noise_std(t)
    da, db = path.scale_deriv(t), path.noise_std_deriv(t)
    sigma = path.sigma(t)
    finite = jnp.isfinite(sigma)
    x_hat = x_t / r(jnp.where(finite, a, 1.0))
    d = denoise(model, x_hat, jnp.where(finite, sigma, 1.0), labels)
    if hasattr(model, "at_infinity"):
        eps_inf = x_t / r(jnp.where(b > 0, b, 1.0))
        d_inf = model.at_infinity(eps_inf) if labels is None else model.at_infinity(eps_inf, labels)
        d = jnp.where(r(finite), d, d_inf)
    else:
        d = jnp.where(r(finite), d, jnp.nan)
    eps = (x_t - r(a) * d) / r(b)
    return r(da) * d + r(db) * eps
