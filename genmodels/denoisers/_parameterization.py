"""Parameterizations: what a network predicts on a path x_t = a(t) x0 + b(t) eps, as values.

Each parameterization owns two things, the regression target a loss fits and the conversion of a
prediction back to the clean estimate x0 (so to the EDM denoiser D(x_hat, sigma) with x_hat = x_t / a):

=============  ==========================================  =================================================
value          target (given x0, eps)                      x0 from a prediction p at (x_t, t)
=============  ==========================================  =================================================
``X0()``       x0                                          p
``Eps()``      eps                                         (x_t - b p) / a
``Score()``    grad log p_t(x_t | x0) = -eps / b           (x_t + b^2 p) / a
``V()``        a eps - b x0 (Salimans & Ho 2022)           (a x_t - b p) / (a^2 + b^2)
``Velocity()`` dx_t/dt = a' x0 + b' eps (flow matching)    (b' x_t - b p) / (a b' - a' b)
=============  ==========================================  =================================================

At the conditional mean the target's expectation is what the network should output, so each conversion
is exact for the Bayes-optimal predictor. ``X0``, ``V`` and ``Velocity`` stay finite where a(t) = 0
(sigma = inf, e.g. the Linear path at t = 1): they are :class:`DefinesLimit` parameterizations and a
model using them can start sampling from pure noise. A new parameterization is one final class here (or
in its own file) implementing :meth:`AbstractParameterization.target` and ``to_x0``.
"""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Float

from genmodels._arrays import rows
from genmodels.paths import AbstractPath


class AbstractParameterization(eqx.Module):
    """What a path model's network predicts (abstract; the concrete values below are final)."""

    @abc.abstractmethod
    def target(
        self,
        path: AbstractPath,
        t: Float[Array, " batch"],
        x0: Float[Array, batch * dims],
        eps: Float[Array, batch * dims],
    ) -> Float[Array, batch * dims]:
        """The regression target at x_t = a(t) x0 + b(t) eps."""

    @abc.abstractmethod
    def to_x0(
        self,
        path: AbstractPath,
        t: Float[Array, " batch"],
        x_t: Float[Array, batch * dims],
        pred: Float[Array, batch * dims],
    ) -> Float[Array, batch * dims]:
        """The clean estimate x0 from the prediction ``pred`` at (x_t, t)."""


class DefinesLimit(abc.ABC):  # noqa: B024 - a marker: the capability has no method of its own
    """Marker: the conversion to x0 stays finite where a(t) = 0 (sigma = inf)."""


def _ab(path, t, x):
    return rows(path.alpha(t), x), rows(path.noise_std(t), x)


class X0(AbstractParameterization, DefinesLimit):
    """The network predicts the clean data x0 directly."""

    def target(self, path, t, x0, eps):
        return x0

    def to_x0(self, path, t, x_t, pred):
        return pred


class Eps(AbstractParameterization):
    """The network predicts the noise E[eps | x_t] (DDPM)."""

    def target(self, path, t, x0, eps):
        return eps

    def to_x0(self, path, t, x_t, pred):
        a, b = _ab(path, t, x_t)
        return (x_t - b * pred) / a


class Score(AbstractParameterization):
    """The network predicts the score grad_{x_t} log p_t(x_t) (its conditional target is -eps / b)."""

    def target(self, path, t, x0, eps):
        return -eps / rows(path.noise_std(t), eps)

    def to_x0(self, path, t, x_t, pred):
        a, b = _ab(path, t, x_t)
        return (x_t + b**2 * pred) / a


class V(AbstractParameterization, DefinesLimit):
    """The network predicts v = a eps - b x0 (Salimans & Ho 2022)."""

    def target(self, path, t, x0, eps):
        a, b = _ab(path, t, x0)
        return a * eps - b * x0

    def to_x0(self, path, t, x_t, pred):
        a, b = _ab(path, t, x_t)
        return (a * x_t - b * pred) / (a**2 + b**2)


class Velocity(AbstractParameterization, DefinesLimit):
    """The network predicts the flow-matching velocity dx_t/dt = a' x0 + b' eps (on the Linear path
    eps - x0)."""

    def target(self, path, t, x0, eps):
        da, db = rows(path.scale_deriv(t), x0), rows(path.noise_std_deriv(t), x0)
        return da * x0 + db * eps

    def to_x0(self, path, t, x_t, pred):
        a, b = _ab(path, t, x_t)
        da, db = rows(path.scale_deriv(t), x_t), rows(path.noise_std_deriv(t), x_t)
        return (db * x_t - b * pred) / (a * db - da * b)
