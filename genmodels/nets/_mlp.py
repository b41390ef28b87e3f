"""A multilayer perceptron for vector data, conditioned on the noise level (and optionally a class)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Int

from genmodels.nets._embedding import check_embedding_args, check_labels, noise_rows, sinusoidal_embedding


class MLP(nnx.Module):
    """F(x, c) for x of shape (batch, dim): ``depth`` hidden layers of width ``hidden`` with SiLU.

    The noise condition c (a scalar or one per row) is embedded with :func:`sinusoidal_embedding`
    (``emb_features`` features, angular frequencies in [min_freq, max_freq]) and a linear layer; a
    class label (``num_classes`` set) adds a learned embedding to it, and label ``num_classes`` is the
    null label (unconditional, for classifier-free guidance). The embedding is added to the first
    hidden layer's pre-activation, h_1 = silu(W x + e) (concatenating it to x instead trains far
    worse when sigma varies), and, with ``condition_every_layer`` (default), a projection of it to
    every later one. The output layer starts at zero, so a preconditioned model starts as
    D = c_skip x.

    Call: ``net(x, noise_cond, labels=None) -> (batch, dim)``.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 256,
        depth: int = 4,
        *,
        rngs: nnx.Rngs,
        num_classes: int | None = None,
        emb_features: int = 64,
        min_freq: float = 1.0,
        max_freq: float = 100.0,
        condition_every_layer: bool = True,
    ):
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"num_classes must be None or an int >= 1, got {num_classes!r}.")
        check_embedding_args(emb_features, min_freq, max_freq)
        self.dim, self.num_classes = dim, num_classes
        self.emb_features, self.min_freq, self.max_freq = emb_features, float(min_freq), float(max_freq)
        self.emb = nnx.Linear(emb_features, hidden, rngs=rngs)
        self.label_emb = nnx.Embed(num_classes + 1, hidden, rngs=rngs) if num_classes is not None else None
        self.inp = nnx.Linear(dim, hidden, rngs=rngs)
        self.layers = nnx.List([nnx.Linear(hidden, hidden, rngs=rngs) for _ in range(depth - 1)])
        self.cond = (
            nnx.List([nnx.Linear(hidden, hidden, use_bias=False, rngs=rngs) for _ in range(depth - 1)])
            if condition_every_layer
            else None
        )
        self.out = nnx.Linear(hidden, dim, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(
        self,
        x: Float[Array, "batch dim"],
        noise_cond: ArrayLike,
        labels: Int[Array, " batch"] | None = None,
    ) -> Float[Array, "batch dim"]:
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"MLP input x must have shape (batch, {self.dim}), got {tuple(x.shape)}.")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"MLP input x must be floating point, got {x.dtype}.")
        c = noise_rows(noise_cond, x.shape[0], x.dtype)
        labels = check_labels(labels, x.shape[0], self.num_classes)
        e = self.emb(sinusoidal_embedding(c, self.emb_features, self.min_freq, self.max_freq))
        if labels is not None:
            e = e + self.label_emb(labels)
        h = jax.nn.silu(self.inp(x) + e.astype(x.dtype))
        for i, layer in enumerate(self.layers):
            pre = layer(h)
            if self.cond is not None:
                pre = pre + self.cond[i](e)
            h = jax.nn.silu(pre)
        return self.out(h)
