"""Autoguidance (Karras et al. 2024): guide a model with a weaker version of itself."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels.errors import ArgumentError
from genmodels.guidance._base import AbstractGuidance, check_scale, checked_output
from genmodels.guidance._interval import GuidanceInterval, as_interval
from genmodels.models._common import check_batch_labels, denoise
from genmodels.models._conditioning import check_label_vector
from genmodels.protocols import HasLimitAtInfinity, forwarding_class


class Autoguidance(AbstractGuidance):
    """D_w(x, sigma) = D_0(x, sigma | y) + w (D_1(x, sigma | y) - D_0(x, sigma | y)): the good model D_1
    extrapolated away from a weaker guide D_0 conditioned on the same labels.

    Karras et al. (2024) take as D_0 a smaller or less-trained version of D_1: the two make similar errors
    (both too spread out where the data are thin), and the difference points from the guide's errors
    towards the data, so w > 1 sharpens the samples without the loss of variety that classifier-free
    guidance brings, whose unconditional guide differs from the conditional model in the task, not only
    in its errors. w = 1 gives the good model alone, w = 0 the guide::

        guided = gm.guidance.Autoguidance(model, small_model, labels, scale=2.0)
        x = gm.sample(guided, gm.samplers.Heun(gm.schedules.karras(32)), key, (labels.shape[0], 2))

    ``scale`` and the interval's ends are array leaves: new values reuse the compiled sampler. A guide whose
    output has another shape than the model's input is an ArgumentError naming ``guide`` when traced.
    ``Solution.nfe`` counts both models (2 per call; 1 outside a guidance interval).

    Args:
        model: the good model D_1 (``denoise(x, sigma, labels=None)``, or a plain callable without labels).
        guide: the weaker model D_0, with the same inputs and output shape.
        labels: integer array of shape (batch,) passed to both models, or ``None`` for unconditional models.
        scale: guidance weight w (finite scalar).
        interval: keyword only; ``None`` (guide at every noise level), a ``GuidanceInterval`` or ``(lo, hi)``.

    The guided model is a ``gm.protocols.HasLimitAtInfinity`` exactly when both models are.
    """

    model: Any
    guide: Any
    labels: Int[Array, " batch"] | None
    scale: Float[Array, ""]
    interval: GuidanceInterval | None

    def __new__(cls, model=None, guide=None, *args, **kwargs):
        if cls is Autoguidance:
            variants = (_AutoguidanceWithLimit,)
            chosen = forwarding_class(Autoguidance, model, variants)
            cls = chosen if chosen is forwarding_class(Autoguidance, guide, variants) else Autoguidance
        return super().__new__(cls)

    def __init__(self, model: Any, guide: Any, labels=None, scale=1.0, *, interval=None):
        if model is None or guide is None:
            raise ArgumentError(
                f"Autoguidance needs a model and a guide, got {'model' if model is None else 'guide'}=None."
            )
        self.model = model
        self.guide = guide
        self.labels = None if labels is None else check_label_vector(labels)
        self.scale = check_scale(scale)
        self.interval = as_interval(interval)

    @property
    def _positive_model(self) -> Any:
        return self.model

    @property
    def _negative_model(self) -> Any:
        return self.guide

    def _labels_for(self, x: Array) -> Array | None:
        return None if self.labels is None else check_batch_labels(self.labels, x)

    def denoise(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        if labels is not None:
            raise ArgumentError(
                "labels are fixed by Autoguidance(model, guide, labels, scale); pass none to its denoise."
            )
        labels = self._labels_for(x)
        return self._guided(
            x,
            sigma,
            lambda: checked_output("model", denoise(self.model, x, sigma, labels), x),
            lambda: checked_output("guide", denoise(self.guide, x, sigma, labels), x),
        )

    def __call__(self, x: Float[Array, batch * dims], sigma) -> Float[Array, batch * dims]:
        return self.denoise(x, sigma)


class _AutoguidanceWithLimit(Autoguidance, HasLimitAtInfinity):
    def at_infinity(self, eps, labels=None):
        labels = self._labels_for(eps)
        return self._guided(
            eps,
            jnp.inf,
            lambda: checked_output("model.at_infinity", self.model.at_infinity(eps, labels), eps),
            lambda: checked_output("guide.at_infinity", self.guide.at_infinity(eps, labels), eps),
        )
