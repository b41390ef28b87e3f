"""The interface shared by the autoregressive models over binary data, and its input checks.

A model over x in {0, 1}^n factorises along an ordering o (a permutation of the n dimensions; ``o[i]`` is
the dimension generated i-th):

    log p(x) = sum_i log Bernoulli(x_{o_i}; sigmoid(l_i)),   l_i = f_i(x_{o_0}, ..., x_{o_{i-1}}),

so ``log_prob`` is exact and normalised by construction whenever the logit l_i never sees x_{o_j} for
j >= i. Every model keeps its data in the *data layout* (``(batch, n_dims)``, or ``(batch, height,
width)`` for images) and reports conditional logits in that layout too: ``logits(x)[:, d]`` is the logit
of x_d given the dimensions before d in the ordering.

What the ancestral sampler (``gm.samplers.Ancestral``) needs from a model is the protocol
``gm.protocols.AbstractAutoregressiveModel``, on flat ``(batch, n)`` arrays:

* ``event_shape`` and ``ordering`` (an int array; may be traced, e.g. MADE's mask-dependent ordering);
* ``conditionals(x)``: the teacher-forced logits of every position in one pass;
* optionally the capability ``gm.protocols.Incremental``: ``init_cache(batch, dtype)`` and
  ``step(cache, i, x) -> (logit, cache)``, the logit, shape ``(batch,)``, of dimension ``ordering[i]``
  given ``x`` whose dimensions ``ordering[:i]`` hold their values, folding ``x[:, ordering[i - 1]]`` into the
  cache (NADE: the running pre-activation; FVSBN: the running logits; Transformer: the KV cache) with
  O(one position) of work. Without it the sampler re-runs ``conditionals`` (n full passes per sample).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float, Int, PRNGKeyArray

from genmodels._checks import check_binary, is_concrete
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.protocols import AbstractAutoregressiveModel


def as_ordering(ordering: Any, n: int) -> Int[Array, " n"]:
    """Validate an ordering: a permutation of ``range(n)`` (``ordering[i]`` = dimension generated i-th)."""
    if ordering is None:
        return jnp.arange(n, dtype=jnp.int32)
    if not is_concrete(ordering):
        raise ArgumentTypeError(
            "ordering must be a concrete array (a permutation of range(n_dims)), not a traced value."
        )
    v = np.asarray(ordering)
    if v.ndim != 1 or v.shape[0] != n:
        raise ArgumentError(f"ordering must be a 1-D permutation of range({n}), got shape {v.shape}.")
    if not np.issubdtype(v.dtype, np.integer) or not np.array_equal(np.sort(v), np.arange(n)):
        raise ArgumentError(
            f"ordering must be a permutation of range({n}) (each dimension exactly once), got {v.tolist()[:8]}"
            f"{'...' if n > 8 else ''}."
        )
    return jnp.asarray(v, dtype=jnp.int32)


def bernoulli_log_prob(x: Float[Array, "batch n"], logits: Float[Array, "batch n"]) -> Float[Array, " batch"]:
    """sum_d log Bernoulli(x_d; sigmoid(l_d)) = sum_d [x_d l_d - softplus(l_d)], stable for large |l|."""
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


class AbstractAutoregressive(nnx.Module, AbstractAutoregressiveModel):
    """Base class: validated ``log_prob`` / ``logits`` in the data layout.

    Subclasses set ``event_shape`` (a tuple), ``ordering`` (attribute or property) and implement
    ``conditionals(x_flat)`` with ``x_flat`` of shape ``(batch, n_dims)``; incremental models also derive
    from ``gm.protocols.Incremental`` and implement ``init_cache`` / ``step``.
    """

    event_shape: tuple[int, ...]

    @property
    def n_dims(self) -> int:
        return int(np.prod(self.event_shape))

    # -- input checks -------------------------------------------------------------------------------
    def _flat(self, x: Array, name: str = "x") -> Array:
        x = jnp.asarray(x)
        ev = tuple(self.event_shape)
        if x.ndim != len(ev) + 1 or tuple(x.shape[1:]) != ev:
            hint = " (a single example needs a batch axis: x[None])" if tuple(x.shape) == ev else ""
            raise ArgumentError(
                f"{name} must have shape (batch, {', '.join(map(str, ev))}) for {type(self).__name__}, "
                f"got {tuple(x.shape)}{hint}."
            )
        if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == bool):
            raise ArgumentTypeError(f"{name} must hold 0/1 numbers or booleans, got dtype {x.dtype}.")
        x = check_binary(name, x)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
        return x.reshape(x.shape[0], -1).astype(dtype)

    # -- densities ----------------------------------------------------------------------------------
    def logits(self, x: Array) -> Array:
        """Conditional logits in the data layout: ``logits(x)[b, d] = logit p(x_d = 1 | x_<d in order)``."""
        xf = self._flat(x)
        return self.conditionals(xf).reshape(x.shape)

    def log_prob(self, x: Array) -> Float[Array, " batch"]:
        """Exact log-likelihood in nats of binary ``x`` of shape ``(batch, *event_shape)``."""
        xf = self._flat(x)
        return bernoulli_log_prob(xf, self.conditionals(xf))

    def training_log_prob(self, x: Array, key: PRNGKeyArray | None) -> Float[Array, " batch"]:
        """The log-likelihood a training step maximises; MADE draws a random mask from ``key`` here."""
        return self.log_prob(x)


def nll_loss(
    model: AbstractAutoregressive, batch: Array, key: PRNGKeyArray | None = None
) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
    """Mean negative log-likelihood in nats per example, ``-mean(model.training_log_prob(batch, key))``.

    A loss for ``gm.train.fit`` (signature ``(model, batch, key)``, returning ``(loss, metrics)`` like every
    genmodels loss; metrics ``{"nll": loss}``); for MADE with several masks the key draws this step's mask
    (order- and connectivity-agnostic training).
    """
    nll = -jnp.mean(model.training_log_prob(batch, key))
    return nll, {"nll": nll}
