"""PixelCNN over binary images in raster order (van den Oord et al., 2016).

Masked convolutions: a k x k kernel centred on pixel (r, c) keeps the rows above r and, in row r, the
columns left of c; type A (first layer) also drops the centre, type B (later layers) keeps it. With one
input channel there is no colour masking. The gated variant replaces the masked stack by a vertical stack
(rows <= r, shifted down one row before it feeds the other stack) and a horizontal stack (row r, columns
<= c; < c in the first layer), which removes the blind spot of stacked masked convolutions, with gated
units tanh(a) * sigmoid(b).

Sampling re-runs the whole network once per pixel: H W passes of O(H W C^2 k^2) per image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float

from genmodels._checks import check_n_dims
from genmodels.autoregressive._base import AbstractAutoregressive
from genmodels.errors import ArgumentError


def causal_mask(kh: int, kw: int, mask_type: str) -> np.ndarray:
    """(kh, kw) 0/1 mask of a type "A" or "B" masked convolution centred at (kh // 2, kw // 2)."""
    if mask_type not in ("A", "B"):
        raise ArgumentError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
    m = np.zeros((kh, kw), np.float32)
    r, c = kh // 2, kw // 2
    m[:r, :] = 1
    m[r, :c] = 1
    if mask_type == "B":
        m[r, c] = 1
    return m


def _conv(x, kernel, bias, padding):
    y = jax.lax.conv_general_dilated(
        x, kernel.astype(x.dtype), (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + bias.astype(x.dtype)


class _Conv(nnx.Module):
    """A convolution with a fixed 0/1 spatial mask (None: unmasked) and explicit padding."""

    def __init__(self, kh, kw, cin, cout, *, mask=None, padding="SAME", rngs):
        fan_in = cin * (kh * kw if mask is None else max(float(mask.sum()), 1.0))
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (kh, kw, cin, cout)) / np.sqrt(fan_in))
        self.bias = nnx.Param(jnp.zeros((cout,)))
        self.mask_np = None if mask is None else tuple(map(tuple, np.asarray(mask).tolist()))
        self.padding = padding

    def __call__(self, x):
        k = self.kernel[...]
        if self.mask_np is not None:
            k = k * jnp.asarray(self.mask_np, k.dtype)[:, :, None, None]
        return _conv(x, k, self.bias[...], self.padding)


def _gate(y):
    a, b = jnp.split(y, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)


def _down(v):
    return jnp.pad(v, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def _right(x):
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


class PixelCNN(AbstractAutoregressive):
    """PixelCNN (``gated=False``: masked convolutions A then B with residual blocks) or Gated PixelCNN.

    Args:
        shape: ``(height, width)`` of the binary images.
        channels: hidden feature maps C.
        num_layers: hidden layers after the first (type B blocks, or gated layers).
        kernel_size: k of the first layer (odd), 7 by default.
        hidden_kernel: k of the later layers (odd), 3 by default.
        gated: use the gated vertical/horizontal stacks.
        rngs: ``nnx.Rngs``.

    The ordering is raster order (``ordering = arange(H W)``); it is fixed by the masks.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        channels: int = 64,
        num_layers: int = 6,
        kernel_size: int = 7,
        hidden_kernel: int = 3,
        *,
        gated: bool = False,
        rngs: nnx.Rngs,
    ):
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise ArgumentError(f"shape must be (height, width), got {shape!r}.")
        h, w = (check_n_dims("height/width", s) for s in shape)
        for name, k in (("kernel_size", kernel_size), ("hidden_kernel", hidden_kernel)):
            if not (isinstance(k, int) and k >= 1 and k % 2 == 1):
                raise ArgumentError(f"{name} must be an odd positive int, got {k!r}.")
        c = check_n_dims("channels", channels)
        self.event_shape = (h, w)
        self.gated = bool(gated)
        self.ordering = nnx.data(jnp.arange(h * w, dtype=jnp.int32))
        k, kk = kernel_size, hidden_kernel
        if not self.gated:
            self.first = _Conv(k, k, 1, c, mask=causal_mask(k, k, "A"), rngs=rngs)
            self.blocks = nnx.List(
                [_Conv(kk, kk, c, c, mask=causal_mask(kk, kk, "B"), rngs=rngs) for _ in range(num_layers)]
            )
        else:

            def v_conv(cin, kx):
                return _Conv(kx // 2 + 1, kx, cin, 2 * c, padding=((kx // 2, 0), (kx // 2, kx // 2)), rngs=rngs)

            def h_conv(cin, kx):
                return _Conv(1, kx // 2 + 1, cin, 2 * c, padding=((0, 0), (kx // 2, 0)), rngs=rngs)

            sizes = [(1, k)] + [(c, kk)] * num_layers
            self.v_convs = nnx.List([v_conv(ci, kx) for ci, kx in sizes])
            self.h_convs = nnx.List([h_conv(ci, kx) for ci, kx in sizes])
            self.links = nnx.List([_Conv(1, 1, 2 * c, 2 * c, rngs=rngs) for _ in sizes])
            self.h_outs = nnx.List([_Conv(1, 1, c, c, rngs=rngs) for _ in sizes])
        self.out1 = _Conv(1, 1, c, c, rngs=rngs)
        self.out2 = _Conv(1, 1, c, 1, rngs=rngs)

    def _features(self, img: Float[Array, "batch h w 1"]) -> Float[Array, "batch h w c"]:
        if not self.gated:
            f = self.first(img)
            for block in self.blocks:
                f = f + block(jax.nn.relu(f))
            return f
        v, h = img, _right(img)  # first horizontal layer sees columns < c only
        for layer, (vc, hc, link, ho) in enumerate(
            zip(self.v_convs, self.h_convs, self.links, self.h_outs, strict=False)
        ):
            v_pre = vc(v)
            h_pre = hc(h) + link(_down(v_pre))  # vertical features of rows < r only
            v = _gate(v_pre)
            h = ho(_gate(h_pre)) if layer == 0 else h + ho(_gate(h_pre))
        return h

    def conditionals(self, x):
        hgt, wid = self.event_shape
        img = (2.0 * x - 1.0).reshape(x.shape[0], hgt, wid, 1)
        f = self._features(img)
        out = self.out2(jax.nn.relu(self.out1(jax.nn.relu(f))))
        return out.reshape(x.shape[0], hgt * wid)
