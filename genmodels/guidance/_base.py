"""What every guidance wrapper shares: the extrapolation D_w = D_neg + w (D_pos - D_neg), the guidance
interval, and the count of network evaluations per call."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels._checks import check_finite
from genmodels.errors import ArgumentError
from genmodels.guidance._interval import GuidanceInterval
from genmodels.protocols import AbstractDenoiserModel, HasEvaluationCount


def check_scale(scale: Any) -> Float[Array, ""]:
    """The guidance weight as a finite floating scalar leaf (NaN / inf: ArgumentError naming ``scale``)."""
    try:
        scale = jnp.asarray(scale, dtype=jnp.result_type(float))
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"scale must be a number (the guidance weight w), got {scale!r:.60}.") from err
    if scale.ndim != 0:
        raise ArgumentError(f"scale must be a scalar, got shape {tuple(scale.shape)}.")
    return check_finite("scale", scale, "the guidance weight w must be a finite number")


def checked_output(name: str, out: Any, like: Array) -> Array:
    """``out`` if it is an array of ``like``'s shape (in ``like``'s dtype); else, at trace time, an
    ArgumentError naming ``name`` (a guide of another shape, e.g. a model of another data set)."""
    if not isinstance(out, jax.Array) or tuple(out.shape) != tuple(like.shape):
        got = tuple(out.shape) if isinstance(out, jax.Array) else type(out).__name__
        raise ArgumentError(f"{name} must return an array of the input's shape {tuple(like.shape)}, got {got}.")
    return out.astype(like.dtype)


def evaluation_cost(model: Any, sigma: Any) -> Int[Array, ""]:
    """Network evaluations of one call of ``model`` at ``sigma``: its own count when it is a
    ``gm.protocols.HasEvaluationCount`` (a guided model inside another guidance wrapper), else 1."""
    if isinstance(model, HasEvaluationCount):
        return jnp.asarray(model.evaluations(sigma), jnp.int32)
    return jnp.asarray(1, jnp.int32)


def _rows(mask: Array, like: Array) -> Array:
    """A scalar or per-row (batch,) mask broadcast against ``like`` (batch, *dims)."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


class AbstractGuidance(eqx.Module, AbstractDenoiserModel, HasEvaluationCount):
    """A guided denoiser D_w = D_neg + w (D_pos - D_neg): the positive model (conditional, good) is
    extrapolated away from the negative one (unconditional for classifier-free guidance, a weaker model for
    autoguidance). w = 1 gives the positive model, w = 0 the negative one.

    With ``interval = GuidanceInterval(lo, hi)`` the wrapper guides only for lo <= sigma <= hi and returns
    D_pos elsewhere. For a scalar sigma (what every sampler passes) the negative model sits in a
    ``lax.cond`` and is not evaluated outside the interval; for one sigma per row (shape (batch,)) it is
    evaluated for the whole batch when any row is inside, and the rows are selected after. ``evaluations``
    counts exactly that: cost(positive) + [negative evaluated] cost(negative).
    """

    scale: eqx.AbstractVar[Float[Array, ""]]
    interval: eqx.AbstractVar[GuidanceInterval | None]

    @property
    @abc.abstractmethod
    def _positive_model(self) -> Any:
        """The model extrapolated towards (its evaluations are counted)."""

    @property
    @abc.abstractmethod
    def _negative_model(self) -> Any:
        """The model extrapolated away from (its evaluations are counted)."""

    def _guided(
        self,
        x: Float[Array, batch * dims],
        sigma: Any,
        positive: Callable[[], Array],
        negative: Callable[[], Array],
    ) -> Float[Array, batch * dims]:
        """D_neg + w (D_pos - D_neg) inside the interval, D_pos outside; ``positive`` and ``negative``
        evaluate the two models at (x, sigma) and are called at most once each."""
        pos = positive()
        if self.interval is None:
            neg = negative()
            return neg + self.scale.astype(pos.dtype) * (pos - neg)
        inside = self.interval.contains(sigma)
        neg = jax.lax.cond(jnp.any(inside), lambda: negative().astype(pos.dtype), lambda: pos)
        guided = neg + self.scale.astype(pos.dtype) * (pos - neg)
        return jnp.where(_rows(inside, x), guided, pos)

    def evaluations(self, sigma: Any) -> Int[Array, ""]:
        """Network evaluations of one ``denoise`` call at ``sigma`` (scalar, or one per row): 2 for two plain
        models; 1 where the guidance interval skips the negative model."""
        sigma = jnp.asarray(sigma)
        pos = evaluation_cost(self._positive_model, sigma)
        neg = evaluation_cost(self._negative_model, sigma)
        if self.interval is None:
            return pos + neg
        return pos + jnp.where(jnp.any(self.interval.contains(sigma)), neg, 0).astype(jnp.int32)
