"""Fixing the class labels of a conditional model, so that the samplers see a plain denoiser."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Int

from genmodels.errors import ArgumentError
from genmodels.models._common import check_batch_labels, denoise, score
from genmodels.protocols import AbstractDenoiserModel, HasLimitAtInfinity, HasScore, forwarding_class


def check_label_vector(labels: Any, name: str = "labels") -> Int[Array, " batch"]:
    """A 1-D integer array (one class per sample)."""
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.ndim != 1:
        raise ArgumentError(
            f"{name} must be a 1-D integer array (one per sample), got {labels.dtype}{tuple(labels.shape)}."
        )
    return labels


class Conditioned(eqx.Module, AbstractDenoiserModel):
    """``model`` with its labels fixed: ``denoise(x, sigma) = model.denoise(x, sigma, labels=labels)``.

    ``labels`` has one integer per batch row of the samples (shape (batch,)); sampling with a different
    batch size is a ValueError. The wrapper forwards the model's capabilities: it is a
    ``HasLimitAtInfinity`` / ``HasScore`` exactly when ``model`` is. Build with :func:`with_labels`.
    """

    model: Any
    labels: Int[Array, " batch"]

    def __new__(cls, model=None, *args, **kwargs):
        if cls is Conditioned:
            cls = forwarding_class(Conditioned, model, _CONDITIONED_VARIANTS)
        return super().__new__(cls)

    def __init__(self, model: Any, labels):
        self.model = model
        self.labels = check_label_vector(labels)

    def denoise(self, x, sigma, labels=None):
        if labels is not None:
            raise ArgumentError("labels are fixed by with_labels(...); pass none to its denoise.")
        return denoise(self.model, x, sigma, check_batch_labels(self.labels, x))

    def __call__(self, x, sigma):
        return self.denoise(x, sigma)


class _ConditionedWithLimit(Conditioned, HasLimitAtInfinity):
    def at_infinity(self, eps, labels=None):
        return self.model.at_infinity(eps, check_batch_labels(self.labels, eps))


class _ConditionedWithScore(Conditioned, HasScore):
    def score(self, x, sigma, labels=None):
        return score(self.model, x, sigma, check_batch_labels(self.labels, x))


class _ConditionedWithLimitAndScore(_ConditionedWithLimit, _ConditionedWithScore):
    pass


_CONDITIONED_VARIANTS = (_ConditionedWithLimit, _ConditionedWithScore, _ConditionedWithLimitAndScore)


def with_labels(model: Any, labels) -> Conditioned:
    """The conditional ``model`` at fixed class ``labels`` (integer array of shape (batch,)), ready for
    ``gm.sample(with_labels(model, labels), sampler, key, (batch, ...))``."""
    return Conditioned(model, labels)
