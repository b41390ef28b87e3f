"""Embeddings of the noise condition (c_noise, sigma or t) and of class labels.

The noise condition is a scalar per batch row whose range depends on the model wrapper: EDM
preconditioning gives c_noise = ln(sigma) / 4 (about [-1.6, 1.1]), a path model gives t in [0, 1], VP
preconditioning gives (M - 1) t in [0, 999]. A sinusoidal embedding with geometric angular frequencies
omega_k in [min_freq, max_freq] resolves inputs of size ~1/max_freq up to ~1/min_freq, so the defaults
(1 to 100) suit the first two; use ``min_freq=1e-3, max_freq=1`` (the DDPM positional embedding) for
(M - 1) t. The frequencies are fixed, not trained, and live in no state.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from genmodels.errors import ArgumentError, ArgumentTypeError


def noise_rows(noise_cond: ArrayLike, batch: int, dtype) -> Float[Array, " batch"]:
    """Broadcast a scalar or (batch,) noise condition to shape (batch,), with a clear error otherwise."""
    c = jnp.asarray(noise_cond, dtype=dtype)
    if c.ndim == 0:
        return jnp.broadcast_to(c, (batch,))
    if c.shape == (batch, 1):
        c = c[:, 0]
    if c.shape != (batch,):
        raise ArgumentError(
            f"noise_cond must be a scalar or have shape ({batch},) (one per row), got {tuple(c.shape)}."
        )
    return c


def sinusoidal_embedding(
    c: Float[Array, " batch"], features: int, min_freq: float = 1.0, max_freq: float = 100.0
) -> Float[Array, "batch features"]:
    """[cos(omega_k c), sin(omega_k c)] with ``features // 2`` angular frequencies geometric in
    [min_freq, max_freq]; ``features`` must be even."""
    half = features // 2
    freqs = np.geomspace(min_freq, max_freq, half) if half > 1 else np.asarray([min_freq])
    arg = c[:, None] * jnp.asarray(freqs, dtype=c.dtype)
    return jnp.concatenate([jnp.cos(arg), jnp.sin(arg)], axis=-1)


@dataclasses.dataclass(frozen=True)
class NoiseEmbedding:
    """How a network embeds its noise condition: ``features`` sinusoids (even) with angular frequencies
    geometric in [``min_freq``, ``max_freq``] (see the module docstring for choosing them).

    An architecture hyper-parameter (static: it sets shapes), shared by ``gm.nets.MLP`` and ``UNet``.
    """

    features: int = 64
    min_freq: float = 1.0
    max_freq: float = 100.0

    def __post_init__(self):
        features, lo, hi = self.features, self.min_freq, self.max_freq
        if not isinstance(features, int) or isinstance(features, bool) or features < 2 or features % 2:
            raise ArgumentError(f"NoiseEmbedding features must be an even int >= 2, got {features!r}.")
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ArgumentError(
                f"NoiseEmbedding needs 0 < min_freq <= max_freq < inf, got min_freq={lo}, max_freq={hi}."
            )

    def __call__(self, c: Float[Array, " batch"]) -> Float[Array, "batch features"]:
        return sinusoidal_embedding(c, self.features, self.min_freq, self.max_freq)


def check_embedding(embedding) -> NoiseEmbedding:
    if not isinstance(embedding, NoiseEmbedding):
        raise ArgumentTypeError(f"embedding must be a gm.nets.NoiseEmbedding, got {embedding!r}.")
    return embedding


def check_labels(labels, batch: int, num_classes: int | None) -> Int[Array, " batch"] | None:
    """Validate class labels for a network with ``num_classes`` classes (null label = num_classes).

    ``labels=None`` means unconditional: every row gets the null label. Labels must be an integer array of
    shape (batch,) with values in [0, num_classes] (num_classes itself is the null label used by
    classifier-free guidance). Concrete labels are range-checked now, traced ones inside jit.
    """
    if num_classes is None:
        if labels is not None:
            raise ArgumentError("labels were given but the network was built without num_classes (unconditional).")
        return None
    if labels is None:
        return jnp.full((batch,), num_classes, dtype=jnp.int32)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ArgumentTypeError(f"labels must be an integer array, got dtype {labels.dtype}.")
    if labels.ndim == 0:
        labels = jnp.broadcast_to(labels, (batch,))
    if labels.shape != (batch,):
        raise ArgumentError(f"labels must have shape ({batch},) (one per batch row), got {tuple(labels.shape)}.")
    bad = (labels < 0) | (labels > num_classes)
    msg = f"labels must lie in [0, {num_classes}] ({num_classes} = the null label of classifier-free guidance)."
    if isinstance(labels, jax.core.Tracer):
        labels = eqx.error_if(labels, jnp.any(bad), msg)
    elif bool(np.any(np.asarray(bad))):
        raise ArgumentError(msg + f" Got min {int(labels.min())}, max {int(labels.max())}.")
    return labels.astype(jnp.int32)
