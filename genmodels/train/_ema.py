"""The exponential moving average of the parameters: the math and the :class:`EMA` policy of ``fit``.

``ema_0 = theta_0`` and ``ema_{s+1} = d_s ema_s + (1 - d_s) theta_{s+1}`` after every update. Without warm-up
``d_s = d``, so after ``s`` updates ``ema_s = d^s theta_0 + (1 - d) sum_{j=1..s} d^{s-j} theta_j``: the initial
parameters keep weight ``d^s`` (55 % after 600 steps at ``d = 0.999``). With warm-up (the default;
TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) ``d_s = min(d, (1 + s) / (10 + s))``: the average
forgets the initialisation within a few hundred steps (``d_0 = 0.1``) and reaches ``d`` after
``(10 d - 1) / (1 - d)`` updates (8,991 at ``d = 0.999``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree

from genmodels.errors import ArgumentError, ArgumentTypeError


def ema_decay_at(decay: float, step: ArrayLike, warmup: bool = True) -> Float[Array, ""]:
    """The decay ``d_s`` used for the update after ``step`` updates: ``min(d, (1 + s) / (10 + s))`` with warm-up."""
    d = jnp.asarray(decay, jnp.float32)
    if not warmup:
        return d
    s = jnp.asarray(step, jnp.float32)
    return jnp.minimum(d, (1.0 + s) / (10.0 + s))


def ema_update(ema: PyTree[Array], params: PyTree[Array], decay: float | Float[Array, ""]) -> PyTree[Array]:
    """One EMA step, ``d ema + (1 - d) params``, leaf by leaf (in each leaf's dtype)."""
    return jax.tree.map(lambda e, p: (decay * e + (1 - decay) * p).astype(e.dtype), ema, params)


class EMA(eqx.Module):
    """The EMA policy of :func:`~genmodels.train.fit`: decay ``d`` in [0, 1), with or without warm-up.

    ``fit(ema=EMA(0.999))`` (the default) keeps an average of the parameters beside them and returns it as
    ``FitResult.ema_model``; ``fit(ema=None)`` keeps none.
    """

    decay: float = 0.999
    warmup: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        if isinstance(self.decay, bool) or not isinstance(self.decay, (float, int)) or not 0.0 <= self.decay < 1.0:
            raise ArgumentError(f"EMA decay must be a float in [0, 1), got {self.decay!r}.")
        if not isinstance(self.warmup, bool):
            raise ArgumentTypeError(f"EMA warmup must be True or False, got {self.warmup!r}.")

    def decay_at(self, step: ArrayLike) -> Float[Array, ""]:
        """``d_s`` after ``step`` updates (see the module docstring)."""
        return ema_decay_at(self.decay, step, self.warmup)

    def update(self, ema: PyTree[Array], params: PyTree[Array], step: ArrayLike) -> PyTree[Array]:
        """The average after the update that follows ``step`` updates, given the new ``params``."""
        return ema_update(ema, params, self.decay_at(step))
