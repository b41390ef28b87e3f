"""A small U-Net for few-channel images in NHWC layout, e.g. 8x8 digits and 28x28 MNIST."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Int

from genmodels._checks import check_count
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.nets._embedding import NoiseEmbedding, check_embedding, check_labels, noise_rows


def _groups(channels: int, num_groups: int) -> int:
    g = min(num_groups, channels)
    while channels % g:
        g -= 1
    return g


class ResBlock(nnx.Module):
    """GroupNorm-SiLU-Conv3x3, plus a projection of the embedding, then GroupNorm-SiLU-Conv3x3 (zero
    initialised); a 1x1 convolution on the skip path when the channel count changes."""

    def __init__(self, cin: int, cout: int, emb: int, num_groups: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.GroupNorm(cin, num_groups=_groups(cin, num_groups), rngs=rngs)
        self.conv1 = nnx.Conv(cin, cout, (3, 3), rngs=rngs)
        self.proj = nnx.Linear(emb, cout, rngs=rngs)
        self.norm2 = nnx.GroupNorm(cout, num_groups=_groups(cout, num_groups), rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs)
        self.skip = nnx.Conv(cin, cout, (1, 1), rngs=rngs) if cin != cout else None

    def __call__(self, x, emb):
        h = self.conv1(jax.nn.silu(self.norm1(x)))
        h = h + self.proj(emb)[:, None, None, :]
        h = self.conv2(jax.nn.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


class Attention(nnx.Module):
    """Multi-head self-attention over the H*W positions, pre-GroupNorm, residual."""

    def __init__(self, channels: int, num_heads: int, num_groups: int, *, rngs: nnx.Rngs):
        self.norm = nnx.GroupNorm(channels, num_groups=_groups(channels, num_groups), rngs=rngs)
        self.attn = nnx.MultiHeadAttention(
            num_heads, channels, out_kernel_init=nnx.initializers.zeros, decode=False, rngs=rngs
        )

    def __call__(self, x):
        n, h, w, c = x.shape
        tokens = self.norm(x).reshape(n, h * w, c)
        return x + self.attn(tokens).reshape(n, h, w, c)


class UNet(nnx.Module):
    """F(x, c) for images x of shape (batch, H, W, C) (NHWC, channels last), same output shape.

    Levels i = 0..L-1 (L = len(channel_mult)) work at resolution H / 2^i with ``base * channel_mult[i]``
    channels and ``num_res_blocks`` residual blocks each; strided 3x3 convolutions go down, nearest
    upsampling plus a 3x3 convolution go up, and the skip of each level is concatenated on the way up.
    The lowest resolution has ResBlock-Attention-ResBlock in the middle. H and W must be divisible by
    2^(L-1): (1, 2) suits 8x8 (8 -> 4), (1, 2, 2) suits 28x28 (28 -> 14 -> 7).

    The noise condition is embedded as in :class:`MLP` (sinusoidal, then two linear layers); with
    ``num_classes`` a learned class embedding is added and label ``num_classes`` is the null label.
    The last convolution starts at zero.

    Call: ``net(x, noise_cond, labels=None) -> (batch, H, W, C)``.
    """

    def __init__(
        self,
        channels: int = 1,
        base: int = 32,
        channel_mult: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        *,
        rngs: nnx.Rngs,
        num_classes: int | None = None,
        attention: bool = True,
        num_heads: int = 4,
        num_groups: int = 8,
        embedding: NoiseEmbedding = NoiseEmbedding(),
    ):
        mult = tuple(channel_mult)
        if not mult:
            raise ArgumentError(f"channel_mult must be a non-empty sequence of ints >= 1, got {channel_mult!r}.")
        for i, m in enumerate(mult):
            check_count(f"channel_mult[{i}]", m)
        for name, value in (("channels", channels), ("base", base), ("num_res_blocks", num_res_blocks)):
            check_count(name, value)
        if num_classes is not None:
            check_count("num_classes", num_classes)
        if attention and (base * mult[-1]) % num_heads:
            raise ArgumentError(
                f"base * channel_mult[-1] = {base * mult[-1]} must be divisible by num_heads={num_heads}."
            )
        self.embedding = check_embedding(embedding)
        self.channels, self.levels, self.num_classes = channels, len(mult), num_classes
        emb = 4 * base
        self.emb1 = nnx.Linear(embedding.features, emb, rngs=rngs)
        self.emb2 = nnx.Linear(emb, emb, rngs=rngs)
        self.label_emb = nnx.Embed(num_classes + 1, emb, rngs=rngs) if num_classes is not None else None
        self.conv_in = nnx.Conv(channels, base, (3, 3), rngs=rngs)
        chans = [base * m for m in mult]
        down, downsample, c = [], [], base
        for i, ch in enumerate(chans):
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(c, ch, emb, num_groups, rngs=rngs))
                c = ch
            down.append(nnx.List(blocks))
            if i < len(chans) - 1:
                downsample.append(nnx.Conv(c, c, (3, 3), strides=2, rngs=rngs))
        self.down, self.downsample = nnx.List(down), nnx.List(downsample)
        self.mid1 = ResBlock(c, c, emb, num_groups, rngs=rngs)
        self.mid_attn = Attention(c, num_heads, num_groups, rngs=rngs) if attention else None
        self.mid2 = ResBlock(c, c, emb, num_groups, rngs=rngs)
        up, upsample = [], []
        for i in reversed(range(len(chans))):
            blocks = []
            for j in range(num_res_blocks):
                blocks.append(ResBlock(c + (chans[i] if j == 0 else 0), chans[i], emb, num_groups, rngs=rngs))
                c = chans[i]
            up.append(nnx.List(blocks))
            if i > 0:
                upsample.append(nnx.Conv(c, c, (3, 3), rngs=rngs))
        self.up, self.upsample = nnx.List(up), nnx.List(upsample)
        self.norm_out = nnx.GroupNorm(c, num_groups=_groups(c, num_groups), rngs=rngs)
        self.conv_out = nnx.Conv(c, channels, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(
        self,
        x: Float[Array, "batch H W C"],
        noise_cond: ArrayLike,
        labels: Int[Array, " batch"] | None = None,
    ) -> Float[Array, "batch H W C"]:
        x = jnp.asarray(x)
        factor = 2 ** (self.levels - 1)
        if x.ndim != 4 or x.shape[-1] != self.channels:
            raise ArgumentError(
                f"UNet input x must be NHWC images of shape (batch, H, W, {self.channels}), got {tuple(x.shape)}."
            )
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ArgumentError(
                f"UNet with {self.levels} levels needs H and W divisible by {factor}, got {tuple(x.shape[1:3])}."
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ArgumentTypeError(f"UNet input x must be floating point, got {x.dtype}.")
        n = x.shape[0]
        c = noise_rows(noise_cond, n, x.dtype)
        labels = check_labels(labels, n, self.num_classes)
        e = self.embedding(c)
        e = self.emb2(jax.nn.silu(self.emb1(e)))
        if labels is not None:
            e = e + self.label_emb(labels)
        e = jax.nn.silu(e)

        h, skips = self.conv_in(x), []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, e)
            skips.append(h)
            if i < self.levels - 1:
                h = self.downsample[i](h)
        h = self.mid1(h, e)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, e)
        for k, blocks in enumerate(self.up):
            i = self.levels - 1 - k
            if k > 0:
                nb, hh, ww, cc = h.shape
                h = jax.image.resize(h, (nb, 2 * hh, 2 * ww, cc), method="nearest")
                h = self.upsample[k - 1](h)
            h = jnp.concatenate([h, skips[i]], axis=-1)
            for block in blocks:
                h = block(h, e)
        return self.conv_out(jax.nn.silu(self.norm_out(h)))
