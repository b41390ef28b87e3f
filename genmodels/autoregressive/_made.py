"""MADE: a masked MLP whose masks enforce the autoregressive property (Germain et al., 2015).

Degrees (0-based): input dimension d has degree r(d), its position in the ordering; hidden unit k of
layer l draws m_l(k) uniformly from [min m_{l-1}, n - 2]. Masks keep the connections

    input d -> unit k:     r(d) <= m_1(k),      unit k' -> unit k:   m_{l-1}(k') <= m_l(k),
    unit k -> output d:    m_L(k) < r(d),       (direct) input j -> output d:   r(j) < r(d),

so output d depends only on the inputs before d. Mask ``k`` (ordering and degrees) is a pure function of
``jax.random.fold_in(key(mask_seed), k)``, recomputed inside each call: ``num_masks`` masks are a fixed
set, training draws one per step from its key (connectivity-agnostic; order-agnostic as well with
``order_agnostic=True``), and ``ensemble_log_prob`` averages the *probabilities* of the masks.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int, PRNGKeyArray

from genmodels._checks import check_n_dims
from genmodels.autoregressive._base import (
    AbstractAutoregressive,
    as_ordering,
    bernoulli_log_prob,
)
from genmodels.errors import ArgumentError


class MADE(AbstractAutoregressive):
    """Masked autoencoder for distribution estimation over ``n_dims`` bits.

    Args:
        n_dims: number of binary dimensions.
        hidden: hidden layer widths (default one layer of 500).
        ordering: the ordering of every mask when ``order_agnostic=False`` (identity by default).
        order_agnostic: each mask draws its own random ordering.
        num_masks: size of the fixed set of masks (1: a single MADE).
        mask_seed: seed of the mask set.
        direct: add direct input-to-output connections (a masked FVSBN term).
        activation: hidden nonlinearity (ReLU).
        rngs: ``nnx.Rngs``.

    ``model.mask`` (an int, traced in jit) selects the mask used by ``log_prob``, ``logits`` and the
    sampler. Sampling re-runs the network once per dimension: n passes of O(n H + H^2) per sample.
    """

    def __init__(
        self,
        n_dims: int,
        hidden: Sequence[int] = (500,),
        *,
        ordering=None,
        order_agnostic: bool = False,
        num_masks: int = 1,
        mask_seed: int = 0,
        direct: bool = False,
        activation=jax.nn.relu,
        rngs: nnx.Rngs,
    ):
        n = check_n_dims("n_dims", n_dims)
        hidden = tuple(int(check_n_dims("hidden width", h)) for h in hidden)
        if len(hidden) == 0:
            raise ArgumentError("hidden must list at least one hidden layer width.")
        self.event_shape = (n,)
        self.hidden = hidden
        self.base_ordering = nnx.data(as_ordering(ordering, n))
        self.order_agnostic = bool(order_agnostic)
        self.num_masks = check_n_dims("num_masks", num_masks)
        self.mask_seed = int(mask_seed)
        self.direct = bool(direct)
        self.activation = activation
        self.mask = nnx.data(jnp.asarray(0, jnp.int32))
        sizes = (n, *hidden, n)
        keys = jax.random.split(rngs.params(), len(sizes))
        self.kernels = nnx.List(
            [
                nnx.Param(jax.random.normal(k, (a, b)) / jnp.sqrt(a))
                for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=False)
            ]
        )
        self.biases = nnx.List([nnx.Param(jnp.zeros((b,))) for b in sizes[1:]])
        self.direct_kernel = nnx.Param(jnp.zeros((n, n))) if self.direct else None

    # -- masks --------------------------------------------------------------------------------------
    def mask_ordering(self, mask: Int[Array, ""] | int | None = None) -> Int[Array, " n"]:
        """The ordering of mask ``mask`` (``self.mask`` by default)."""
        mask = self.mask if mask is None else mask
        if not self.order_agnostic:
            return self.base_ordering
        key = jax.random.fold_in(jax.random.key(self.mask_seed), mask)
        return jax.random.permutation(jax.random.fold_in(key, 0), self.n_dims).astype(jnp.int32)

    @property
    def ordering(self) -> Int[Array, " n"]:
        return self.mask_ordering(self.mask)

    def masks(self, mask: Int[Array, ""] | int | None = None) -> tuple[list[Array], Array | None]:
        """0/1 masks of each layer (shapes of the kernels) and of the direct term, for mask ``mask``."""
        mask = self.mask if mask is None else mask
        n = self.n_dims
        key = jax.random.fold_in(jax.random.key(self.mask_seed), mask)
        order = self.mask_ordering(mask)
        rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
        degrees, low = [rank], jnp.asarray(0, jnp.int32)
        for layer, width in enumerate(self.hidden):
            hi = jnp.maximum(n - 1, low + 1)  # exclusive upper bound: degrees in [low, n - 2]
            deg = jax.random.randint(jax.random.fold_in(key, layer + 1), (width,), low, hi)
            degrees.append(deg)
            low = jnp.min(deg)
        out = [(degrees[k][:, None] <= degrees[k + 1][None, :]) for k in range(len(self.hidden))]
        out.append(degrees[-1][:, None] < rank[None, :])
        direct = (rank[:, None] < rank[None, :]) if self.direct else None
        return out, direct

    def random_mask(self, key: PRNGKeyArray) -> Int[Array, ""]:
        """A mask index drawn uniformly from ``range(num_masks)``."""
        return jax.random.randint(key, (), 0, self.num_masks)

    # -- densities ----------------------------------------------------------------------------------
    def _logits_mask(self, x: Float[Array, "batch n"], mask) -> Float[Array, "batch n"]:
        masks, direct = self.masks(mask)
        dt = x.dtype
        h = x
        for layer, (w, b, m) in enumerate(zip(self.kernels, self.biases, masks, strict=False)):
            h = h @ (w[...].astype(dt) * m.astype(dt)) + b[...].astype(dt)
            if layer < len(self.hidden):
                h = self.activation(h)
        if self.direct:
            h = h + x @ (self.direct_kernel[...].astype(dt) * direct.astype(dt))
        return h

    def conditionals(self, x):
        return self._logits_mask(x, self.mask)

    def log_prob(self, x: Array, mask: Int[Array, ""] | int | None = None) -> Float[Array, " batch"]:
        """Exact log-likelihood (nats) under mask ``mask`` (``self.mask`` by default)."""
        xf = self._flat(x)
        return bernoulli_log_prob(xf, self._logits_mask(xf, self.mask if mask is None else mask))

    def training_log_prob(self, x, key):
        if key is None or self.num_masks == 1:
            return self.log_prob(x)
        return self.log_prob(x, mask=self.random_mask(key))

    def ensemble_log_prob(self, x: Array, num_masks: int | None = None) -> Float[Array, " batch"]:
        """log (1/K) sum_k p_k(x) over masks k = 0..K-1 (K = ``num_masks``, all of the model's by default).

        An average of normalised densities, hence itself normalised; logits are *not* averaged.
        """
        k = self.num_masks if num_masks is None else check_n_dims("num_masks", num_masks)
        xf = self._flat(x)
        lps = jax.lax.map(lambda m: bernoulli_log_prob(xf, self._logits_mask(xf, m)), jnp.arange(k))
        return jax.nn.logsumexp(lps, axis=0) - jnp.log(jnp.asarray(k, xf.dtype))

    def set_mask(self, mask: int | Int[Array, ""]) -> None:
        """Select the mask used by ``log_prob``, ``logits`` and sampling (in place)."""
        if isinstance(mask, int) and not 0 <= mask < self.num_masks:
            raise ArgumentError(f"mask must be in range({self.num_masks}), got {mask}.")
        self.mask = jnp.asarray(mask, jnp.int32)
