"""A multilayer perceptron for vector data, conditioned on the noise level (and optionally a class)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Int

from genmodels._checks import check_count
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.nets._embedding import NoiseEmbedding, check_embedding, check_labels, noise_rows
from genmodels.protocols import TakesSecondTime


class MLP(nnx.Module):
    """F(x, c) for x of shape (batch, dim): ``depth`` hidden layers of width ``hidden`` with SiLU.

    The noise condition c (a scalar or one per row) is embedded with ``embedding`` (a
    :class:`NoiseEmbedding`: sinusoids, then a linear layer); a class label (``num_classes`` set) adds a learned embedding to it, and label ``num_classes`` is the
    null label (unconditional, for classifier-free guidance). The embedding is added to the first
    hidden layer's pre-activation, h_1 = silu(W x + e) (concatenating it to x instead trains far
    worse when sigma varies), and, with ``condition_every_layer`` (default), a projection of it to
    every later one. The output layer starts at zero, so a preconditioned model starts as
    D = c_skip x.

    Call: ``net(x, noise_cond, labels=None) -> (batch, dim)``. With ``second_time=True`` the network is a
    ``gm.protocols.TakesSecondTime`` (its class is chosen at construction), called as
    ``net(x, noise_cond, second_cond, labels=None)``: a second noise condition (the target time of a flow
    map) is embedded the same way by its own linear layer and added to the first.
    """

    def __new__(cls, *args, second_time: bool = False, **kwargs):
        if cls is MLP and second_time:
            cls = _TwoTimeMLP
        return super().__new__(cls)

    def __init__(
        self,
        dim: int,
        hidden: int = 256,
        depth: int = 4,
        *,
        rngs: nnx.Rngs,
        num_classes: int | None = None,
        embedding: NoiseEmbedding = NoiseEmbedding(),
        condition_every_layer: bool = True,
        second_time: bool = False,
    ):
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            check_count(name, value)
        if num_classes is not None:
            check_count("num_classes", num_classes)
        self.dim, self.num_classes = dim, num_classes
        self.embedding = check_embedding(embedding)
        self.emb = nnx.Linear(embedding.features, hidden, rngs=rngs)
        self.emb_second = nnx.Linear(embedding.features, hidden, rngs=rngs) if second_time else None
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
        return self._forward(x, noise_cond, None, labels)

    def _forward(self, x, noise_cond, second_cond, labels):
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ArgumentError(f"MLP input x must have shape (batch, {self.dim}), got {tuple(x.shape)}.")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ArgumentTypeError(f"MLP input x must be floating point, got {x.dtype}.")
        c = noise_rows(noise_cond, x.shape[0], x.dtype)
        labels = check_labels(labels, x.shape[0], self.num_classes)
        e = self.emb(self.embedding(c))
        if second_cond is not None:
            e = e + self.emb_second(self.embedding(noise_rows(second_cond, x.shape[0], x.dtype)))
        if labels is not None:
            e = e + self.label_emb(labels)
        h = jax.nn.silu(self.inp(x) + e.astype(x.dtype))
        for i, layer in enumerate(self.layers):
            pre = layer(h)
            if self.cond is not None:
                pre = pre + self.cond[i](e)
            h = jax.nn.silu(pre)
        return self.out(h)


class _TwoTimeMLP(MLP, TakesSecondTime):
    def __call__(
        self,
        x: Float[Array, "batch dim"],
        noise_cond: ArrayLike,
        second_cond: ArrayLike,
        labels: Int[Array, " batch"] | None = None,
    ) -> Float[Array, "batch dim"]:
        return self._forward(x, noise_cond, second_cond, labels)
