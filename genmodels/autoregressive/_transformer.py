"""A decoder-only Transformer over the flattened bits, with rotary position embeddings and a KV cache.

The sequence is the data in its ordering. Position t reads the previous bit
(nothing at t = 0) and predicts x_{o_t}:

    e_0 = B + P[0],    e_t = (1 - x_{o_{t-1}}) E_0 + x_{o_{t-1}} E_1 + P[t],
    pre-LayerNorm blocks  e <- e + Attn(LN e),  e <- e + MLP(LN e),    l_t = w . LN(e_t) + c.

B, E_0, E_1 are learned vectors (a token embedding written linearly in the bit, so that gradients with
respect to x exist). Attention is causal (position t attends to positions <= t, hence to x_{o_<t} only)
and rotates queries and keys by RoPE at their positions; P is a learned embedding of the position (which
dimension comes next), added because relative positions alone do not say which bit is predicted.
``log_prob`` runs all n positions at once, O(n^2 D) per example. Sampling is incremental: each step runs
one position against the cached keys and values of the earlier ones, O(n D) per step instead of a full
O(n^2 D) pass.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from genmodels._checks import check_n_dims
from genmodels.autoregressive._base import AbstractAutoregressive, as_ordering
from genmodels.autoregressive._fvsbn import _unorder
from genmodels.errors import ArgumentError
from genmodels.protocols import Incremental


def rope(x: Float[Array, "... t heads d"], positions: Array, base: float = 10000.0) -> Array:
    """Rotate pairs (x_k, x_{k + d/2}) by angle position * base^(-2k/d) (rotary position embedding)."""
    half = x.shape[-1] // 2
    freqs = base ** (-jnp.arange(half, dtype=x.dtype) / half)
    ang = positions.astype(x.dtype)[:, None] * freqs[None, :]  # (t, half)
    cos, sin = jnp.cos(ang)[:, None, :], jnp.sin(ang)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


class _Block(nnx.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, rngs: nnx.Rngs):
        self.heads = heads
        self.ln1 = nnx.LayerNorm(dim, rngs=rngs)
        self.qkv = nnx.Linear(dim, 3 * dim, rngs=rngs)
        self.proj = nnx.Linear(dim, dim, rngs=rngs)
        self.ln2 = nnx.LayerNorm(dim, rngs=rngs)
        self.fc1 = nnx.Linear(dim, mlp_ratio * dim, rngs=rngs)
        self.fc2 = nnx.Linear(mlp_ratio * dim, dim, rngs=rngs)

    def _qkv(self, e, positions):
        b, t, d = e.shape
        q, k, v = jnp.split(self.qkv(self.ln1(e)), 3, axis=-1)
        q, k, v = (a.reshape(b, t, self.heads, d // self.heads) for a in (q, k, v))
        return rope(q, positions), rope(k, positions), v

    def _attend(self, q, k, v, allowed):
        scale = q.shape[-1] ** -0.5
        s = jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale
        s = jnp.where(allowed, s, jnp.finfo(s.dtype).min)
        o = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(s, axis=-1), v)
        return o.reshape(o.shape[0], o.shape[1], -1)

    def _mlp(self, e):
        return self.fc2(jax.nn.gelu(self.fc1(self.ln2(e))))

    def __call__(self, e):
        t = e.shape[1]
        pos = jnp.arange(t)
        q, k, v = self._qkv(e, pos)
        e = e + self.proj(self._attend(q, k, v, pos[:, None] >= pos[None, :]))
        return e + self._mlp(e)

    def step(self, e, i, cache_k, cache_v):
        """One position ``i``: e (batch, 1, dim); caches (batch, n, heads, dh) updated at row i."""
        q, k, v = self._qkv(e, i[None])
        cache_k = jax.lax.dynamic_update_slice_in_dim(cache_k, k.astype(cache_k.dtype), i, axis=1)
        cache_v = jax.lax.dynamic_update_slice_in_dim(cache_v, v.astype(cache_v.dtype), i, axis=1)
        allowed = (jnp.arange(cache_k.shape[1]) <= i)[None, :]
        e = e + self.proj(self._attend(q, cache_k, cache_v, allowed))
        return e + self._mlp(e), cache_k, cache_v


class Transformer(AbstractAutoregressive, Incremental):
    """Decoder-only Transformer over ``n_dims`` bits in the given ordering.

    Args:
        n_dims: number of binary dimensions (the sequence length).
        dim: model width D.
        heads: attention heads (D divisible by heads, head width even for RoPE).
        layers: number of blocks.
        mlp_ratio: MLP hidden width / D.
        ordering: optional permutation of ``range(n_dims)``.
        rngs: ``nnx.Rngs``.
    """

    def __init__(
        self,
        n_dims: int,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        mlp_ratio: int = 4,
        *,
        ordering=None,
        rngs: nnx.Rngs,
    ):
        n = check_n_dims("n_dims", n_dims)
        for name, v in (("dim", dim), ("heads", heads), ("layers", layers), ("mlp_ratio", mlp_ratio)):
            check_n_dims(name, v)
        if dim % heads or (dim // heads) % 2:
            raise ArgumentError(f"dim ({dim}) must be divisible by heads ({heads}) with an even head width for RoPE.")
        self.event_shape = (n,)
        self.ordering = nnx.data(as_ordering(ordering, n))
        self.heads = heads
        self.tok = nnx.Embed(3, dim, rngs=rngs)
        self.pos = nnx.Embed(n, dim, rngs=rngs)
        self.blocks = nnx.List([_Block(dim, heads, mlp_ratio, rngs) for _ in range(layers)])
        self.ln = nnx.LayerNorm(dim, rngs=rngs)
        self.head = nnx.Linear(dim, 1, rngs=rngs)

    def _embed(self, prev, positions, dtype):
        """Inputs at ``positions``; ``prev`` (batch, t) the previous bits (position 0 reads BOS instead)."""
        table = self.tok.embedding[...].astype(dtype)
        bit = prev[..., None].astype(dtype)
        e = (1 - bit) * table[1] + bit * table[2]
        e = jnp.where((positions == 0)[None, :, None], table[0], e)
        return e + self.pos(positions).astype(dtype)

    def conditionals(self, x):
        b, n = x.shape
        xo = x[:, self.ordering]
        prev = jnp.concatenate([jnp.zeros((b, 1), x.dtype), xo[:, :-1]], axis=1)
        e = self._embed(prev, jnp.arange(n), x.dtype)
        for block in self.blocks:
            e = block(e)
        lo = self.head(self.ln(e))[..., 0].astype(x.dtype)
        return _unorder(lo, self.ordering)

    def init_cache(self, batch, dtype):
        d = self.tok.embedding.shape[1]
        shape = (len(self.blocks), batch, self.n_dims, self.heads, d // self.heads)
        return jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)

    def step(self, state, i, x):
        ck, cv = state
        prev = x[:, self.ordering[jnp.maximum(i - 1, 0)]][:, None]
        e = self._embed(prev, i[None], x.dtype)
        new_k, new_v = [], []
        for layer, block in enumerate(self.blocks):
            e, k, v = block.step(e, i, ck[layer], cv[layer])
            new_k.append(k)
            new_v.append(v)
        logit = self.head(self.ln(e))[:, 0, 0].astype(x.dtype)
        return logit, (jnp.stack(new_k), jnp.stack(new_v))
