"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser the samplers take directly."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels._checks import check_finite
from genmodels.errors import ArgumentError
from genmodels.models._common import check_batch_labels, denoise
from genmodels.models._conditioning import check_label_vector
from genmodels.protocols import AbstractDenoiserModel, HasLimitAtInfinity, forwarding_class


class ClassifierFree(eqx.Module, AbstractDenoiserModel):
    """D_w(x, sigma) = D(x, sigma) + w (D(x, sigma | y) - D(x, sigma)) for a class-conditional model.

    The unconditional D is the model called with ``labels=None`` (the networks of ``gm.nets`` then use
    their null label, the one ``gm.losses.drop_labels`` trains on). w = 0 gives the unconditional
    model, w = 1 the conditional one, w > 1 guides. ``scale`` is an array leaf, so new scales reuse the
    compiled sampler::

        guided = gm.guidance.ClassifierFree(model, labels, scale=2.0)
        x = gm.sample(guided, gm.samplers.Heun(gm.schedules.karras(18)), key, (labels.shape[0], 8, 8, 1))

    Args:
        model: a conditional model with ``denoise(x, sigma, labels=None)`` (e.g. ``gm.models.EDMModel``
            over a network with ``num_classes``).
        labels: integer array of shape (batch,), one class per sample.
        scale: guidance weight w (scalar).

    The guided model is a ``gm.protocols.HasLimitAtInfinity`` exactly when ``model`` is.
    """

    model: Any
    labels: Int[Array, " batch"]
    scale: Float[Array, ""]

    def __new__(cls, model=None, *args, **kwargs):
        if cls is ClassifierFree:
            cls = forwarding_class(ClassifierFree, model, (_ClassifierFreeWithLimit,))
        return super().__new__(cls)

    def __init__(self, model: Any, labels, scale=1.0):
        labels = check_label_vector(labels)
        scale = jnp.asarray(scale, dtype=jnp.result_type(float))
        if scale.ndim != 0:
            raise ArgumentError(f"scale must be a scalar, got shape {tuple(scale.shape)}.")
        self.model = model
        self.labels = labels
        self.scale = check_finite("scale", scale)

    def _mix(self, uncond, cond):
        return uncond + self.scale.astype(uncond.dtype) * (cond - uncond)

    def denoise(self, x: Float[Array, batch * dims], sigma, labels=None) -> Float[Array, batch * dims]:
        if labels is not None:
            raise ArgumentError("labels are fixed by ClassifierFree(model, labels, scale); pass none to its denoise.")
        labels = check_batch_labels(self.labels, x)
        return self._mix(denoise(self.model, x, sigma), denoise(self.model, x, sigma, labels))

    def __call__(self, x: Float[Array, batch * dims], sigma) -> Float[Array, batch * dims]:
        return self.denoise(x, sigma)


class _ClassifierFreeWithLimit(ClassifierFree, HasLimitAtInfinity):
    def at_infinity(self, eps, labels=None):
        labels = check_batch_labels(self.labels, eps)
        return self._mix(self.model.at_infinity(eps), self.model.at_infinity(eps, labels))
