"""FVSBN and NADE: logistic conditionals, without and with a shared hidden layer.

Both keep their parameters in *ordered* coordinates: row i of a weight belongs to the i-th dimension of
the ordering, so x is permuted once, ``x_o = x[:, ordering]``, and logits are put back with the inverse
permutation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from genmodels._checks import check_n_dims
from genmodels.autoregressive._base import AbstractAutoregressive, as_ordering
from genmodels.protocols import Incremental


def _unorder(values_ordered: Array, ordering: Array) -> Array:
    """Put (batch, n) values indexed by step back into the data layout."""
    return jnp.zeros_like(values_ordered).at[:, ordering].set(values_ordered)


class FVSBN(AbstractAutoregressive, Incremental):
    """Fully visible sigmoid belief net: one logistic regression per conditional.

    l_i = b_i + sum_{j < i} W_ij x_{o_j} (W strictly lower triangular in ordered coordinates), n(n+1)/2
    effective parameters. ``log_prob`` is one masked matmul, O(n^2) per example. Sampling is incremental:
    the running logits a = b + W x_{<i} gain a column of W per step, O(n) per step.

    Args:
        n_dims: number of binary dimensions.
        ordering: optional permutation of ``range(n_dims)``; the identity by default.
        rngs: ``nnx.Rngs`` (weights start small and random, biases at 0).
    """

    def __init__(self, n_dims: int, *, ordering=None, init_scale: float = 0.01, rngs: nnx.Rngs):
        n = check_n_dims("n_dims", n_dims)
        self.event_shape = (n,)
        self.ordering = nnx.data(as_ordering(ordering, n))
        self.weight = nnx.Param(init_scale * jax.random.normal(rngs.params(), (n, n)))
        self.bias = nnx.Param(jnp.zeros((n,)))

    def _masked_weight(self) -> Float[Array, "n n"]:
        return jnp.tril(self.weight[...], k=-1)

    def conditionals(self, x):
        xo = x[:, self.ordering]
        lo = xo @ self._masked_weight().T.astype(x.dtype) + self.bias[...].astype(x.dtype)
        return _unorder(lo, self.ordering)

    def init_cache(self, batch, dtype):
        return jnp.broadcast_to(self.bias[...].astype(dtype), (batch, self.n_dims))

    def step(self, state, i, x):
        j = jnp.maximum(i - 1, 0)
        n = self.n_dims
        column = jnp.where(jnp.arange(n) > j, self.weight[...][:, j], 0).astype(x.dtype)  # column j of tril(W, -1)
        prev = x[:, self.ordering[j]] * (i > 0)
        state = state + prev[:, None] * column[None, :]
        return state[:, i], state


class NADE(AbstractAutoregressive, Incremental):
    """Neural autoregressive density estimator (Larochelle and Murray, 2011).

    With a_0 = c and a_{i+1} = a_i + W_{:, i} x_{o_i} (weights shared across conditionals),

        h_i = sigmoid(a_i),    l_i = b_i + V_i . h_i,

    so ``log_prob`` costs O(n H) per example: one ``lax.scan`` over the ordered dimensions carrying a_i
    (memory O(batch H); n sequential steps). Sampling is incremental with the same recursion: the state
    is the running pre-activation a_i, O(H) per step.

    Args:
        n_dims: number of binary dimensions.
        hidden: H, the hidden units shared by all conditionals (500 as in the paper's UCI experiments).
        ordering: optional permutation of ``range(n_dims)``.
        activation: the hidden nonlinearity (sigmoid in the paper).
        rngs: ``nnx.Rngs``.
    """

    def __init__(self, n_dims: int, hidden: int = 500, *, ordering=None, activation=jax.nn.sigmoid, rngs: nnx.Rngs):
        n = check_n_dims("n_dims", n_dims)
        h = check_n_dims("hidden", hidden)
        self.event_shape = (n,)
        self.ordering = nnx.data(as_ordering(ordering, n))
        self.activation = activation
        k1, k2 = jax.random.split(rngs.params())
        self.W = nnx.Param(jax.random.normal(k1, (n, h)) / jnp.sqrt(n))  # input weights, row j = x_{o_j}
        self.c = nnx.Param(jnp.zeros((h,)))
        self.V = nnx.Param(jax.random.normal(k2, (n, h)) / jnp.sqrt(h))  # output weights, row i = l_i
        self.b = nnx.Param(jnp.zeros((n,)))

    def conditionals(self, x):
        dt = x.dtype
        W, V, b = (p[...].astype(dt) for p in (self.W, self.V, self.b))
        xo = x[:, self.ordering]

        def step(a, inputs):  # a = a_i; emit l_i, then add x_{o_i} W_i
            x_i, w_i, v_i, b_i = inputs
            return a + x_i[:, None] * w_i[None, :], self.activation(a) @ v_i + b_i

        a0 = jnp.broadcast_to(self.c[...].astype(dt), (x.shape[0], W.shape[1]))
        _, lo = jax.lax.scan(step, a0, (xo.T, W, V, b))
        return _unorder(lo.T, self.ordering)

    def init_cache(self, batch, dtype):
        return jnp.broadcast_to(self.c[...].astype(dtype), (batch, self.c.shape[0]))

    def step(self, state, i, x):
        dt = x.dtype
        j = jnp.maximum(i - 1, 0)
        prev = x[:, self.ordering[j]] * (i > 0)
        a = state + prev[:, None] * self.W[...].astype(dt)[j][None, :]
        logit = self.activation(a) @ self.V[...].astype(dt)[i] + self.b[...].astype(dt)[i]
        return logit, a
