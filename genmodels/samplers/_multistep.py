"""Shared pieces of the multistep samplers: the history of past model outputs, the warm-start policy and
the lower-order-final rule.

A k-th order multistep method needs k - 1 earlier model outputs; the first k - 1 steps have fewer. What
they do instead is the warm-start policy, a value:

* :class:`LowerOrderStart` (the default, as in k-diffusion, diffusers and the original papers): step j
  uses the highest order its history allows, min(k, j + 1). Cheap (no extra model calls), but the first
  steps' lower-order local errors limit the asymptotic order of the whole run on a fixed schedule: with
  order-1 first steps, the global error cannot fall faster than the first step's local error, O(h^2).
* :class:`RungeKuttaStart`: the first k - 1 steps are taken by the classical fourth-order Runge-Kutta
  method on the probability-flow ODE dx/dt = x - D(x, e^t) in t = log sigma, with ``substeps`` equal
  substeps each, so the history holds (nearly) exact starting values and the method shows its own order.
  This is how the test suite measures the stated orders; it costs 4 ``substeps`` - 1 extra model calls per
  warm step (:func:`warm_extra_calls`).

``lower_order_final`` (diffusers' rule): on schedules of fewer than 15 steps, step i uses at most order
``steps - i``, so the last steps (large h in log sigma near sigma_min) fall back to lower orders, which is
more stable at small NFE.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels._checks import check_count
from genmodels.samplers._base import AbstractStepSampler, unit_cost
from genmodels.samplers._denoiser import Denoiser

LOWER_ORDER_FINAL_BELOW = 15
"""``lower_order_final`` applies on schedules with fewer steps than this (diffusers' threshold)."""


class History(eqx.Module):
    """The last ``k`` model outputs (or derived quantities) and the noise levels they were taken at.

    The values are a ring buffer: :func:`push` overwrites the oldest slot in place (a scan carry's
    dynamic-update-slice, no copy of the other k - 1 entries), and readers address entries by age through
    :func:`newest` and :func:`weighted_sum`, which map the j-th newest entry to slot (head - j) mod k.

    Attributes:
        values: (k, *shape), in ring order: slot ``head`` holds the newest entry, slot (head - j) mod k the
            j-th newest.
        sigmas: (k,), the noise level of each entry, newest first (a small array, shifted on every push).
        count: how many entries are filled (0 <= count <= k).
        head: the slot of the newest entry (0 <= head < k).
    """

    values: Float[Array, "k ..."]
    sigmas: Float[Array, " k"]
    count: Int[Array, ""]
    head: Int[Array, ""]


def empty_history(k: int, like: Array) -> History:
    """A history of ``k`` slots shaped like ``like`` (k >= 1), none filled."""
    zero = jnp.asarray(0, jnp.int32)
    return History(jnp.zeros((k, *like.shape), like.dtype), jnp.ones((k,), like.dtype), zero, zero)


def push(history: History, value: Array, sigma: Array) -> History:
    """``history`` with ``value`` (taken at ``sigma``) as the newest entry; the oldest falls off (its slot is
    overwritten: one (*shape) write, in place under ``jit``)."""
    k = history.values.shape[0]
    head = (history.head + 1) % k
    values = jax.lax.dynamic_update_index_in_dim(history.values, value.astype(history.values.dtype), head, 0)
    sigmas = jnp.concatenate([jnp.asarray(sigma, history.sigmas.dtype)[None], history.sigmas[:-1]])
    return History(values, sigmas, jnp.minimum(history.count + 1, k), head)


def newest(history: History, j: int | Int[Array, ""] = 0) -> Array:
    """The j-th newest entry (j = 0: the newest), of the values' (*shape): slot (head - j) mod (slots)."""
    k = history.values.shape[0]
    return jax.lax.dynamic_index_in_dim(history.values, (history.head - j) % k, 0, keepdims=False)


def weighted_sum(history: History, weights: Float[Array, " n"]) -> Array:
    """sum_j weights[j] v_j over the n newest entries v_j, newest first (weights: (n,), n <= k; unfilled
    entries are zeros). Each entry is read from its slot; nothing of (*shape) is reordered or copied."""
    weights = weights.astype(history.values.dtype)
    return sum(weights[j] * newest(history, j) for j in range(weights.shape[0]))


def latest(history: History, n: int) -> History:
    """A view of the ``n`` newest entries (static n <= k): the same buffer, ``sigmas[:n]``."""
    return History(history.values, history.sigmas[:n], jnp.minimum(history.count, n), history.head)


def previous(history: History) -> History:
    """A view of the history as it was before its newest push, as far as it is still held: the same buffer,
    k - 1 entries (the j-th newest is ``history``'s (j + 1)-th newest). A sampler that must read the history
    from before a push after it (UniPC's corrector) keeps one spare slot and reads this view, so that XLA
    can overwrite the slot in place: nothing reads the old buffer after the push."""
    k = history.values.shape[0]
    count = jnp.maximum(history.count - 1, 0)
    return History(history.values, history.sigmas[1:], count, (history.head - 1) % k)


class AbstractWarmStart(eqx.Module):
    """How a multistep sampler takes its first ``order - 1`` steps (see the module docstring)."""


class LowerOrderStart(AbstractWarmStart):
    """Step j of the run uses order min(order, j + 1): no extra model calls (the papers' and peers' default)."""


class RungeKuttaStart(AbstractWarmStart):
    """The first ``order - 1`` steps by classical RK4 in t = log sigma with ``substeps`` substeps each.

    Args:
        substeps: >= 1 (static), RK4 substeps per warm step; each costs 4 model calls (the first call of the
            first substep is the sampler's own).
    """

    substeps: int = eqx.field(default=4, static=True)

    def __check_init__(self):
        check_count("substeps", self.substeps, minimum=1)


def effective_order(
    order: int, count: Int[Array, ""], i: Int[Array, ""], num_steps: int, lower_order_final: bool
) -> Int[Array, ""]:
    """The order step ``i`` can use: min(order, count + 1) with ``count`` earlier outputs in the history, and,
    with ``lower_order_final`` on a schedule of fewer than 15 steps, at most ``num_steps - i``."""
    p = jnp.minimum(order, count + 1)
    if lower_order_final and num_steps < LOWER_ORDER_FINAL_BELOW:
        p = jnp.minimum(p, num_steps - i)
    return jnp.maximum(p, 1).astype(jnp.int32)


def is_warm(warm_start: AbstractWarmStart, order: int, count: Int[Array, ""]) -> Int[Array, ""] | bool:
    """Whether this step is a Runge-Kutta warm step (``count`` earlier outputs, fewer than order - 1)."""
    if not isinstance(warm_start, RungeKuttaStart) or order <= 1:
        return False
    return count < order - 1


def _substep_times(sigma: Array, sigma_next: Array, substeps: int) -> Array:
    """log sigma at the substep boundaries: (substeps + 1,), uniform in t = log sigma."""
    return jnp.linspace(jnp.log(sigma), jnp.log(sigma_next), substeps + 1)


def runge_kutta_step(
    denoiser: Denoiser, x: Array, sigma: Array, sigma_next: Array, denoised: Array, substeps: int
) -> Array:
    """x at ``sigma_next`` by RK4 on dx/dt = x - D(x, e^t), t = log sigma, with ``substeps`` equal substeps;
    ``denoised`` = D(x, sigma) is reused as the first stage. A step to sigma_next = 0 returns ``denoised``
    (the ODE's limit). Calls the denoiser 4 substeps - 1 times."""
    safe_next = jnp.where(sigma_next > 0, sigma_next, sigma)
    ts = _substep_times(sigma, safe_next, substeps)
    h = ts[1] - ts[0]

    def field(x, t):
        return x - denoiser(x, jnp.exp(t))

    def substep(j, x):
        t = ts[j]
        k1 = jax.lax.cond(j == 0, lambda x: x - denoised, lambda x: field(x, t), x)  # stage 1 of substep 0 is known
        k2 = field(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = field(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = field(x + h * k3, t + h)
        return x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    x_next = jax.lax.fori_loop(0, substeps, substep, x)
    return jnp.where(sigma_next > 0, x_next, denoised)


def warm_extra_calls(
    warm_start: AbstractWarmStart, order: int, step_in_run: Int[Array, ""], sigma: Array, sigma_next: Array,
    evaluations,
) -> Int[Array, ""]:  # fmt: skip
    """Network evaluations a warm step adds to the sampler's own call at ``sigma`` (0 for other steps):
    for :class:`RungeKuttaStart`, the 4 substeps - 1 further RK4 stages, each costed by ``evaluations`` at its
    own noise level. ``step_in_run`` counts the sampler's steps from 0 (a step from sigma = inf excluded)."""
    if not isinstance(warm_start, RungeKuttaStart) or order <= 1:
        return jnp.asarray(0, jnp.int32)
    safe_next = jnp.where(sigma_next > 0, sigma_next, sigma)
    ts = _substep_times(sigma, safe_next, warm_start.substeps)
    total = jnp.asarray(0, jnp.int32)
    for j in range(warm_start.substeps):
        mid, end = jnp.exp(ts[j] + 0.5 * (ts[j + 1] - ts[j])), jnp.exp(ts[j + 1])
        first = evaluations(jnp.exp(ts[j])) if j > 0 else 0
        total = total + first + 2 * evaluations(mid) + evaluations(end)
    warm = (step_in_run < order - 1) & (sigma_next > 0)
    return jnp.where(warm, total, 0).astype(jnp.int32)


class AbstractMultistepSampler(AbstractStepSampler):
    """A step sampler built on a :class:`History`: every one has the options ``warm_start`` (a value,
    default :class:`LowerOrderStart`) and ``lower_order_final`` (static bool). The tests select these
    samplers with ``isinstance`` and measure their stated order with :class:`RungeKuttaStart`."""

    warm_start: eqx.AbstractVar[AbstractWarmStart]
    lower_order_final: eqx.AbstractVar[bool]

    @property
    @abc.abstractmethod
    def history_length(self) -> int:
        """How many model outputs the method's full-order step combines; the warm start covers the first
        ``history_length - 1`` steps."""

    def warm_or(self, warm, multistep, denoiser: Denoiser, x: Array, sigma, sigma_next, denoised: Array) -> Array:
        """``multistep(x)``, or, where ``warm`` (from :func:`is_warm`: ``False`` when no step is a Runge-Kutta
        warm step), the :func:`runge_kutta_step` from ``x`` instead; a ``lax.cond``, so only one branch runs."""
        if warm is False:
            return multistep(x)
        substeps = self.warm_start.substeps

        def rk(x):
            return runge_kutta_step(denoiser, x, sigma, sigma_next, denoised, substeps)

        return jax.lax.cond(warm, rk, multistep, x)

    def step_nfe(self, i: Int[Array, ""], evaluations=unit_cost) -> Int[Array, ""]:
        """One call at ``sigmas[i]``, plus the further RK4 stages of a :class:`RungeKuttaStart` warm step."""
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        step_in_run = i - int(self.start_at_infinity)  # a step from sigma = inf is not the sampler's own
        extra = warm_extra_calls(self.warm_start, self.history_length, step_in_run, sigma, sigma_next, evaluations)
        return (evaluations(sigma) + extra).astype(jnp.int32)
