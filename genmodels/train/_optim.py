"""Optimiser, learning-rate schedules and the parameter EMA used by :func:`genmodels.train.fit`.

Learning rate at optimiser step ``t`` (``t = 0`` for the first update), with peak ``lr``, ``W`` warmup steps,
``T`` total steps and final fraction ``f``:

* warmup (``t < W``): ``lr (t + 1) / W`` (linear, reaching ``lr`` at the last warmup step);
* ``"constant"``: ``lr`` afterwards;
* ``"cosine"``: ``lr [f + (1 - f) (1 + cos(pi min(1, (t - W) / (T - W)))) / 2]``, from ``lr`` at ``t = W``
  down to ``f lr`` at ``t = T``.

EMA of parameters: ``ema_0 = theta_0`` and ``ema_{s+1} = d_s ema_s + (1 - d_s) theta_{s+1}`` after every
update. Without warm-up ``d_s = d``, so after ``s`` updates ``ema_s = d^s theta_0 + (1 - d) sum_{j=1..s}
d^{s-j} theta_j``: the initial parameters keep weight ``d^s`` (55 % after 600 steps at ``d = 0.999``). With
warm-up (the default of ``fit``; TensorFlow's ``ExponentialMovingAverage(num_updates=...)``)
``d_s = min(d, (1 + s) / (10 + s))``: the average forgets the initialisation within a few hundred steps
(``d_0 = 0.1``) and reaches ``d`` after ``(10 d - 1) / (1 - d)`` updates (8,991 at ``d = 0.999``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float, PyTree

from genmodels._checks import check_known, check_positive


def lr_schedule(
    lr: float,
    *,
    warmup: int = 0,
    total_steps: int | None = None,
    schedule: str = "constant",
    final_fraction: float = 0.0,
) -> Callable[[ArrayLike], Float[Array, ""]]:
    """The learning rate as a function of the optimiser step (see the module docstring)."""
    check_positive("lr", lr)
    check_known("schedule", schedule, ("constant", "cosine"))
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}.")
    if not 0.0 <= final_fraction <= 1.0:
        raise ValueError(f"final_fraction must lie in [0, 1], got {final_fraction!r}.")
    if schedule == "cosine":
        if total_steps is None or isinstance(total_steps, bool) or not isinstance(total_steps, int):
            raise ValueError("schedule='cosine' needs total_steps (an int > warmup).")
        if total_steps <= warmup:
            raise ValueError(f"total_steps ({total_steps}) must exceed warmup ({warmup}) for a cosine schedule.")

    def fn(t: ArrayLike) -> Float[Array, ""]:
        t = jnp.asarray(t, jnp.float32)
        rate = jnp.float32(lr)
        if schedule == "cosine":
            frac = jnp.clip((t - warmup) / (total_steps - warmup), 0.0, 1.0)
            rate = lr * (final_fraction + (1 - final_fraction) * 0.5 * (1 + jnp.cos(math.pi * frac)))
        if warmup > 0:
            rate = jnp.where(t < warmup, lr * (t + 1) / warmup, rate)
        return rate

    return fn


def adamw(
    lr: float | Callable = 1e-3,
    *,
    weight_decay: float = 0.0,
    warmup: int = 0,
    total_steps: int | None = None,
    schedule: str = "constant",
    clip: float | None = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    final_fraction: float = 0.0,
) -> optax.GradientTransformation:
    """AdamW with linear warmup then a constant or cosine learning rate, after global-norm gradient clipping.

    ``clip=None`` disables clipping; ``weight_decay=0`` is plain Adam (decoupled decay otherwise). ``lr``
    may also be an optax schedule (then ``warmup``/``schedule`` must keep their defaults).
    """
    if callable(lr):
        if warmup or schedule != "constant":
            raise ValueError("pass either a schedule function as lr or warmup/schedule options, not both.")
        rate = lr
    else:
        rate = lr_schedule(lr, warmup=warmup, total_steps=total_steps, schedule=schedule,
                           final_fraction=final_fraction)  # fmt: skip
    check_positive("weight_decay", weight_decay, allow_zero=True)
    parts = []
    if clip is not None:
        check_positive("clip", clip)
        parts.append(optax.clip_by_global_norm(clip))
    parts.append(optax.adamw(rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay))
    return optax.chain(*parts)


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
