"""The optimiser of ``fit`` and two learning-rate schedules, as optax values.

:func:`adamw` takes any optax schedule as its learning rate. The factories return optax schedules; with
peak ``lr``, ``W`` warm-up steps, ``T`` total steps and final fraction ``f``, the rate at optimiser step ``t``
(``t = 0`` for the first update) is

* warm-up (``t < W``): ``lr (t + 1) / W``, linear, reaching ``lr`` at the last warm-up step;
* :func:`warmup_constant`: ``lr`` afterwards;
* :func:`warmup_cosine`: ``lr [f + (1 - f) (1 + cos(pi min(1, (t - W) / (T - W)))) / 2]`` afterwards, from
  ``lr`` at ``t = W`` down to ``f lr`` at ``t = T`` (optax's ``cosine_decay_schedule``).
"""

from __future__ import annotations

from collections.abc import Callable

import optax

from genmodels._checks import check_count, check_positive
from genmodels.errors import ArgumentError, ArgumentTypeError


def _with_warmup(peak: float, warmup: int, after: optax.Schedule) -> optax.Schedule:
    if warmup == 0:
        return after
    ramp = optax.linear_schedule(peak / warmup, peak, warmup - 1)  # lr (t + 1) / W for t < W
    return optax.join_schedules([ramp, after], [warmup])


def warmup_constant(peak: float, warmup: int = 0) -> optax.Schedule:
    """Linear warm-up over ``warmup`` steps to ``peak``, then constant (see the module docstring)."""
    check_positive("peak", peak)
    warmup = check_count("warmup", warmup, 0)
    return _with_warmup(peak, warmup, optax.constant_schedule(peak))


def warmup_cosine(peak: float, warmup: int, total: int, final_fraction: float = 0.0) -> optax.Schedule:
    """Linear warm-up over ``warmup`` steps to ``peak``, then cosine decay to ``final_fraction * peak`` at
    step ``total`` (see the module docstring)."""
    check_positive("peak", peak)
    warmup, total = check_count("warmup", warmup, 0), check_count("total", total, 1)
    if total <= warmup:
        raise ArgumentError(f"total ({total}) must exceed warmup ({warmup}) for a cosine schedule.")
    if not 0.0 <= final_fraction <= 1.0:
        raise ArgumentError(f"final_fraction must lie in [0, 1], got {final_fraction!r}.")
    return _with_warmup(peak, warmup, optax.cosine_decay_schedule(peak, total - warmup, alpha=final_fraction))


def adamw(
    learning_rate: float | Callable = 1e-3,
    *,
    weight_decay: float = 0.0,
    clip: float | None = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
    """AdamW after global-norm gradient clipping; ``learning_rate`` a number or any optax schedule.

    ``clip=None`` disables clipping; ``weight_decay=0`` is plain Adam (decoupled decay otherwise). Warm-up
    and decay are schedules: ``adamw(warmup_cosine(1e-3, 200, 10_000))``. ``fit`` checks the schedule over
    the run's steps and refuses a negative rate.
    """
    if not callable(learning_rate):
        if isinstance(learning_rate, (str, bool)):
            raise ArgumentTypeError(f"learning_rate must be a number or an optax schedule, got {learning_rate!r}.")
        check_positive("learning_rate", learning_rate)
    check_positive("weight_decay", weight_decay, allow_zero=True)
    parts = []
    if clip is not None:
        check_positive("clip", clip)
        parts.append(optax.clip_by_global_norm(clip))
    parts.append(optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay))
    return optax.chain(*parts)
