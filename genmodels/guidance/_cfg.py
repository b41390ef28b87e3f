"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser the samplers take directly, optionally only
inside a guidance interval (Kynkaanniemi et al. 2024)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels.errors import ArgumentError
from genmodels.guidance._base import AbstractGuidance, check_scale
from genmodels.guidance._interval import GuidanceInterval, as_interval
from genmodels.models._common import check_batch_labels, denoise
from genmodels.models._conditioning import check_label_vector
from genmodels.protocols import HasLimitAtInfinity, forwarding_class


class ClassifierFree(AbstractGuidance):
    """D_w(x, sigma) = D(x, sigma) + w (D(x, sigma | y) - D(x, sigma)) for a class-conditional model.

    The unconditional D is the model called with ``labels=None`` (the networks of ``gm.nets`` then use
    their null label, the one ``gm.losses.drop_labels`` trains on). w = 0 gives the unconditional
    model, w = 1 the conditional one, w > 1 guides. ``scale`` (and the interval's ends) are array leaves,
    so new values reuse the compiled sampler::

        guided = gm.guidance.ClassifierFree(model, labels, scale=2.0)
        x = gm.sample(guided, gm.samplers.Heun(gm.schedules.karras(18)), key, (labels.shape[0], 8, 8, 1))

    With ``interval=GuidanceInterval(lo, hi)`` (or a pair ``(lo, hi)``) it guides only for
    lo <= sigma <= hi and is the conditional model D(x, sigma | y) elsewhere, where the unconditional
    evaluation is skipped (``lax.cond`` on the scalar sigma the samplers pass). ``Solution.nfe`` counts
    network evaluations (``gm.protocols.HasEvaluationCount``): 2 per call, 1 outside the interval.

    Args:
        model: a conditional model with ``denoise(x, sigma, labels=None)`` (e.g. ``gm.models.EDMModel``
            over a network with ``num_classes``).
        labels: integer array of shape (batch,), one class per sample.
        scale: guidance weight w (finite scalar).
        interval: ``None`` (guide at every noise level), a ``GuidanceInterval`` or a pair ``(lo, hi)``.

    The guided model is a ``gm.protocols.HasLimitAtInfinity`` exactly when ``model`` is.
    """

    model: Any
    labels: Int[Array, " batch"]
    scale: Float[Array, ""]
    interval: GuidanceInterval | None

    def __new__(cls, model=None, *args, **kwargs):
        if cls is ClassifierFree:
            cls = forwarding_class(ClassifierFree, model, (_ClassifierFreeWithLimit,))
        return super().__new__(cls)

    def __init__(self, model: Any, labels, scale=1.0, *, interval: GuidanceInterval | tuple | None = None):
        self.model = model
        self.labels = check_label_vector(labels)
        self.scale = check_scale(scale)
        self.interval = as_interval(interval)

    @property
    def _positive_model(self) -> Any:
        return self.model

    @property
    def _negative_model(self) -> Any:
        return self.model

    def denoise(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        if labels is not None:
            raise ArgumentError("labels are fixed by ClassifierFree(model, labels, scale); pass none to its denoise.")
        labels = check_batch_labels(self.labels, x)
        return self._guided(
            x, sigma, lambda: denoise(self.model, x, sigma, labels), lambda: denoise(self.model, x, sigma)
        )

    def __call__(self, x: Float[Array, batch * dims], sigma) -> Float[Array, batch * dims]:
        return self.denoise(x, sigma)


class _ClassifierFreeWithLimit(ClassifierFree, HasLimitAtInfinity):
    def at_infinity(self, eps, labels=None):
        labels = check_batch_labels(self.labels, eps)
        return self._guided(
            eps, jnp.inf, lambda: self.model.at_infinity(eps, labels), lambda: self.model.at_infinity(eps)
        )
