"""The model as the continuous samplers see it: a denoiser with trace-time checks of its output.

This is the driver's boundary: whatever ``gm.sample`` / ``gm.solve`` / ``gm.log_prob`` receive is turned
into a ``gm.protocols.AbstractDenoiserModel`` once (``gm.denoisers.as_denoiser``: a plain callable
``D(x, sigma)`` gets the one adapter), then wrapped here so that every call checks the output's shape and
keeps the state's dtype.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels.denoisers import as_denoiser
from genmodels.errors import ArgumentError
from genmodels.protocols import AbstractDenoiserModel, HasEvaluationCount, HasLimitAtInfinity


def _check_output(what: str, out, like: Array) -> Array:
    if not isinstance(out, jax.Array) or tuple(out.shape) != tuple(like.shape):
        got = tuple(out.shape) if isinstance(out, jax.Array) else type(out).__name__
        raise ArgumentError(
            f"{what} must return a denoised array of the input's shape {tuple(like.shape)}, got {got}. "
            "A model is a denoiser D(x, sigma) -> E[x0 | x]; wrap score, eps, v or velocity models with "
            "gm.denoisers.from_score / from_eps / from_v / from_velocity."
        )
    return out.astype(like.dtype)


class Denoiser(eqx.Module):
    """``D(x, sigma)`` of a denoiser model, with the output's shape checked and its dtype kept.

    ``has_limit`` says whether the model is a ``gm.protocols.HasLimitAtInfinity``; then ``at_infinity(eps)``
    is lim_{sigma -> inf} D(sigma eps, sigma).
    """

    model: AbstractDenoiserModel

    def __init__(self, model, name: str = "model"):
        self.model = as_denoiser(model, name)

    def __call__(self, x: Float[Array, batch * dims], sigma) -> Float[Array, batch * dims]:
        return _check_output("the model", self.model.denoise(x, jnp.asarray(sigma, dtype=x.dtype)), x)

    def evaluations(self, sigma) -> Int[Array, ""]:
        """Network evaluations of one call at the scalar ``sigma``: the model's own count for a
        ``gm.protocols.HasEvaluationCount`` (guidance), else 1. ``Solution.nfe`` sums these."""
        if isinstance(self.model, HasEvaluationCount):
            return jnp.asarray(self.model.evaluations(jnp.asarray(sigma)), jnp.int32)
        return jnp.asarray(1, jnp.int32)

    @property
    def has_limit(self) -> bool:
        return isinstance(self.model, HasLimitAtInfinity)

    def at_infinity(self, eps: Float[Array, batch * dims]) -> Float[Array, batch * dims]:
        if not self.has_limit:  # the schedule's value is what cannot be served: a ValueError
            raise ArgumentError(
                "the schedule starts at sigma = inf, but the model is not a gm.protocols.HasLimitAtInfinity "
                f"({type(self.model).__name__} has no at_infinity(eps)). Start from a finite sigma_max, or use "
                "a parameterization that defines the limit (gm.denoisers.from_velocity / from_v, or a "
                "gm.models.PathModel with Velocity(), V() or X0())."
            )
        return _check_output("model.at_infinity", self.model.at_infinity(eps), eps)
