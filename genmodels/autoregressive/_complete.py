"""Completion: keep the first k dimensions (in the model's ordering) of given data, sample the rest."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from genmodels.samplers._autoregressive import Ancestral
from genmodels.samplers._driver import sample


def complete(model, key: PRNGKeyArray, x: Array, num_known, temperature=1.0) -> Array:
    """Samples from p(x_{o_k}, ..., x_{o_{n-1}} | x_{o_0}, ..., x_{o_{k-1}}), one per row of ``x``.

    Args:
        model: an autoregressive model from ``gm.autoregressive``.
        key: PRNG key.
        x: binary array ``(batch, *event_shape)``; only its first ``num_known`` dimensions in the
            model's ordering are read (for raster-order images, k = (H // 2) W keeps the top half).
        num_known: k, an int (traced: other values reuse the compiled program).
        temperature: T > 0 dividing the conditional logits of the sampled dimensions.

    One compiled program, ``gm.sample(model, Ancestral(temperature, prefix=x, num_known=k), key, x.shape)``.
    """
    x = jnp.asarray(x)
    sampler = Ancestral(temperature, prefix=x, num_known=jnp.asarray(num_known, jnp.int32))
    return sample(model, sampler, key, tuple(x.shape))
