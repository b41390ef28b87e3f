"""Fixing the class labels of a conditional model, so that the samplers see a plain denoiser."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Int

from genmodels.models._common import check_batch_labels, denoise, score


class Conditioned(eqx.Module):
    """``model`` with its labels fixed: ``denoise(x, sigma) = model.denoise(x, sigma, labels=labels)``.

    ``labels`` has one integer per batch row of the samples (shape (batch,)); sampling with a different
    batch size is a ValueError. ``at_infinity`` exists when the model has one. Build with
    :func:`with_labels`.
    """

    model: Any
    labels: Int[Array, " batch"]

    def denoise(self, x, sigma):
        return denoise(self.model, x, sigma, check_batch_labels(self.labels, x))

    __call__ = denoise

    def score(self, x, sigma):
        return score(self.model, x, sigma, check_batch_labels(self.labels, x))

    @property
    def at_infinity(self):
        if not hasattr(self.model, "at_infinity"):
            raise AttributeError(f"{type(self.model).__name__} has no at_infinity.")
        return self._at_infinity

    def _at_infinity(self, eps):
        return self.model.at_infinity(eps, check_batch_labels(self.labels, eps))


def with_labels(model: Any, labels) -> Conditioned:
    """The conditional ``model`` at fixed class ``labels`` (integer array of shape (batch,)), ready for
    ``gm.sample(with_labels(model, labels), sampler, key, (batch, ...))``."""
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D integer array (one per sample), got {labels.dtype}{tuple(labels.shape)}.")
    return Conditioned(model, labels)
