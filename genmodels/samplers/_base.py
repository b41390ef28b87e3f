"""Abstract samplers.

Hierarchy (abstract classes are never instantiated; concrete samplers are final):

* ``AbstractSampler`` -- anything ``gm.sample`` can drive: ``run(model, key, shape, noise, save_trajectory)``.
* ``AbstractDenoiserSampler`` -- continuous samplers that ask the model for a denoiser
  D(x, sigma) = E[x0 | x0 + sigma eps]; draws or validates the starting noise and calls ``integrate``.
* ``AbstractStepSampler`` -- fixed-step samplers over a schedule ``sigmas``: ``init`` and ``step`` run
  inside one ``lax.scan``, so the whole loop is one compiled program. A step samples its own noise from
  ``jax.random.fold_in(key, i)``.

Every sampler describes itself: ``order`` (its convergence order for its options, or ``None``) and
``deterministic`` (whether, given the starting noise, the key changes nothing). The test suite reads both
for every exported sampler, so a new sampler is one file plus one export line.

Numbers (schedules, churn, eta, step sizes) are pytree leaves and so are traced: new values never
recompile. Anything that sets a loop length (the schedule's length, steps per level) is a shape or a
static field, and so is ``start_at_infinity`` (whether the first step is the limit at sigma = inf).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from genmodels._checks import (
    as_sigma_schedule,
    check_finite,
    check_float_dtype,
    check_schedule_dtype,
    check_shape,
    is_concrete,
)
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.samplers._denoiser import Denoiser


class Solution(eqx.Module):
    """What ``gm.solve`` returns.

    Attributes:
        samples: the final samples, shape ``shape``.
        nfe: number of model evaluations (denoiser calls, or network calls for autoregressive models),
            counted inside the compiled program: a scalar, except for per-row adaptive solves
            (``SDE()`` by default, ``ODE(per_sample=True)``), where it has shape (batch,): the calls row j
            needed (the program makes max_j nfe_j batched calls; docs/batch_invariance.md).
        trajectory: ``(num_saved, *shape)`` states when ``save_trajectory=True``, else ``None``. For step
            samplers row 0 is the starting state and row i the state after step i.
        levels: the noise level of each trajectory row (``None`` without a trajectory).
        first_nonfinite: for step samplers, the index of the first trajectory row that held NaN or inf
            (0: the starting state, i + 1: the state after step i), or -1 when every state was finite;
            tracked whether or not the trajectory is saved. ``None`` for samplers that check their own
            result (``ODE`` and ``SDE`` raise inside the program). ``gm.solve`` raises
            :class:`~genmodels.errors.NonFiniteSampleError` when it is >= 0, so a returned solution has
            -1 here.
    """

    samples: Array
    nfe: Int[Array, ""] | Int[Array, " batch"]
    trajectory: Array | None = None
    levels: Array | None = None
    first_nonfinite: Int[Array, ""] | None = None


class AbstractSampler(eqx.Module):
    """Anything the driver ``gm.sample`` / ``gm.solve`` can run; it says what it is with ``order`` and
    ``deterministic``."""

    @property
    @abc.abstractmethod
    def order(self) -> int | None:
        """Convergence order p for these options, or ``None``.

        With deterministic options, the samples' error against the exact probability-flow ODE solution
        from the same noise is O(h^p) in the step size h; with stochastic ones, p is the weak order (the
        error in the samples' law) of the SDE the sampler discretises. ``None`` when the sampler is no
        such discretisation (MCMC correctors, churn, exact ancestral sampling) or when an option that
        decides it is traced. The test suite measures it (``tests/test_samplers.py``).
        """

    @property
    @abc.abstractmethod
    def deterministic(self) -> bool:
        """True when, for these options, the samples are a function of the starting noise alone: given
        ``noise=``, the key changes nothing. ``False`` when an option that decides it is traced."""

    @abc.abstractmethod
    def run(
        self, model: Any, key: PRNGKeyArray, shape: tuple[int, ...], noise: Array | None, save_trajectory: bool
    ) -> Solution:
        """Produce samples of ``shape``; called inside the driver's ``jit``."""


class AbstractDenoiserSampler(AbstractSampler):
    """Continuous samplers in the EDM coordinates x = x0 + sigma eps, driven by a denoiser."""

    @property
    @abc.abstractmethod
    def sigma_start(self) -> Float[Array, ""]:
        """Noise level the sampler starts from (the standard-normal noise is scaled by it)."""

    @abc.abstractmethod
    def integrate(self, denoiser: Denoiser, noise: Array, key: PRNGKeyArray, save_trajectory: bool) -> Solution:
        """Run from ``sigma_start * noise`` down the schedule."""

    def check_dtype(self, dtype: Any) -> None:
        """Eager check that the noise levels are safe in ``dtype`` (float16 overflows above sigma = 128;
        see ``check_schedule_dtype``); the driver calls it before the program."""
        check_schedule_dtype(self.sigma_start, dtype, "the first noise level")

    def run(self, model, key, shape, noise, save_trajectory):
        key_noise, key_run = jax.random.split(key)
        if noise is None:
            noise = jax.random.normal(key_noise, shape, dtype=jnp.result_type(float))
        else:
            noise = jnp.asarray(noise)
            check_shape("noise", noise, shape)
            check_float_dtype("noise", noise)
            noise = check_finite("noise", noise, "pass standard-normal noise of the requested shape")
        return self.integrate(Denoiser(model), noise, key_run, save_trajectory)


def unit_cost(sigma: Any) -> Int[Array, ""]:
    """One network evaluation per denoiser call, at any noise level (the default of ``step_nfe``)."""
    return jnp.asarray(1, jnp.int32)


def known_to_be(value: Any, target: float) -> bool:
    """True when ``value`` is known now (not traced) to equal ``target``, e.g. an option that switches
    randomness off (``eta = 0``); ``order`` and ``deterministic`` are decided with it."""
    return is_concrete(value) and bool(np.all(np.asarray(value) == target))


def _resolve_start_at_infinity(sigmas: Any, start_at_infinity: bool | None) -> bool | None:
    """The option as given, or, for ``None``, read off a concrete schedule (a traced one: ``False``)."""
    if start_at_infinity is not None:
        return start_at_infinity
    if not is_concrete(sigmas):
        return False  # under tracing the choice cannot come from the values; integrate checks them
    try:  # runs before the converter has validated the schedule: guard the shape and the type
        v = np.asarray(sigmas)
    except (TypeError, ValueError):
        return False  # the converter names sigmas and what was expected
    return bool(v.dtype.kind in "iuf" and v.ndim == 1 and v.shape[0] > 0 and np.isinf(v[0]))


def count_param(value: Any) -> Any:
    """Converter for a static count (steps per level, corrector steps, max_steps): numpy integers become
    Python ints (a static field must hold a plain hashable value); anything else is left for the
    ``check_count`` of ``__check_init__`` to accept or refuse."""
    return int(value) if isinstance(value, np.integer) else value


def float_param(value: Any) -> Array:
    """Converter for a sampler's numeric option (eta, s_noise, step sizes): a floating array leaf, so that
    ``eqx.filter_jit`` traces it and new values reuse the compiled program (a Python float would be static)."""
    try:
        arr = jnp.asarray(value)
    except (TypeError, ValueError):
        return value  # not a number: left for the sampler's __check_init__, which names the option
    dtype = arr.dtype if jnp.issubdtype(arr.dtype, jnp.floating) else jnp.result_type(float)
    return jnp.asarray(arr, dtype=dtype)  # an explicit dtype also drops JAX's weak type


def _first_nonfinite(x: Array, found: Int[Array, ""], row: Int[Array, ""] | int) -> Int[Array, ""]:
    """``found`` if already set (>= 0), else ``row`` when x holds NaN or inf, else -1: one reduction per
    step (a NaN from the model propagates to the state, so the state is the one place to look)."""
    return jnp.where((found < 0) & ~jnp.all(jnp.isfinite(x)), jnp.asarray(row, jnp.int32), found)


class AbstractStepSampler(AbstractDenoiserSampler):
    """Fixed-step sampler over a descending schedule ``sigmas`` (``steps + 1`` entries).

    A schedule may start at sigma = inf (pure noise, e.g. a flow-matching model on the Linear path at
    t = 1). The first step is then the exact limit of the Euler (DDIM) step, x_1 = D_inf(eps) +
    sigma_1 eps, which needs a model with ``at_infinity``; every later step is the sampler's own.

    Whether the schedule starts at inf decides the program's structure, so it is the static option
    ``start_at_infinity``: ``None`` (default) reads it off a concrete schedule; a sampler built from a
    traced schedule (inside ``jit``) needs it explicitly, and a first entry that contradicts it is a
    runtime error inside the program (never silent NaN samples).

    Args:
        sigmas: descending schedule, ``steps + 1`` entries (``gm.schedules``).
        start_at_infinity: keyword only; ``True`` when ``sigmas[0]`` is inf, ``False`` when it is finite,
            ``None`` to read it off a concrete schedule (``False`` for a traced one). Static.
    """

    sigmas: Float[Array, " n"] = eqx.field(converter=as_sigma_schedule)
    start_at_infinity: bool | None = eqx.field(default=None, static=True, kw_only=True)

    def __post_init__(self):
        self.start_at_infinity = _resolve_start_at_infinity(self.sigmas, self.start_at_infinity)

    def __check_init__(self):
        if not isinstance(self.start_at_infinity, bool):
            raise ArgumentTypeError(
                f"start_at_infinity must be True, False or None (static), got {self.start_at_infinity!r}."
            )
        if is_concrete(self.sigmas) and bool(np.isinf(np.asarray(self.sigmas)[0])) != self.start_at_infinity:
            raise ArgumentError(self._infinity_message())

    def _infinity_message(self) -> str:
        """Why ``sigmas[0]`` and ``start_at_infinity`` disagree (raised at construction for a concrete
        schedule; for a traced one, by the driver after the program)."""
        if self.start_at_infinity:
            return "sigmas[0] is finite, but start_at_infinity=True; pass start_at_infinity=None or False."
        return (
            "sigmas[0] is inf (pure noise), but the sampler was told start_at_infinity=False, or was built "
            "from a traced schedule (inside jit), where the start cannot be read off the values: pass "
            "start_at_infinity=True (static) to start with the limit step at sigma = inf."
        )

    @property
    def num_steps(self) -> int:
        return self.sigmas.shape[0] - 1

    @property
    def sigma_start(self):
        return self.sigmas[0]

    def check_dtype(self, dtype):
        check_schedule_dtype(self.sigmas, dtype)

    def init(self, denoiser: Denoiser, x: Array, key: PRNGKeyArray) -> Any:
        """Sampler state carried between steps (e.g. a multistep history); default none."""
        return None

    @abc.abstractmethod
    def step(self, denoiser: Denoiser, i: Int[Array, ""], x: Array, state: Any, key: PRNGKeyArray) -> tuple[Array, Any]:
        """Move x from ``sigmas[i]`` to ``sigmas[i + 1]``; returns (x, state)."""

    def step_nfe(self, i: Int[Array, ""], evaluations: Callable[[Any], Int[Array, ""]] = unit_cost) -> Int[Array, ""]:
        """Network evaluations made by step i: the sum of ``evaluations(sigma)`` over the noise levels at which
        the step calls the denoiser (default: one call, at ``sigmas[i]``). ``evaluations`` is the model's cost
        per call (``Denoiser.evaluations``; 1 for a plain model, so the default counts denoiser calls). A
        sampler whose step calls the denoiser elsewhere or more than once overrides this."""
        return evaluations(self.sigmas[i])

    def _in_dtype(self, dtype) -> AbstractStepSampler:
        """This sampler with every float leaf (schedule, eta, ...) in ``dtype`` (so the scan carry keeps
        the noise's dtype) and the schedule's range checked against ``dtype`` (narrow dtypes only)."""
        sampler = jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, self)
        return eqx.tree_at(lambda s: s.sigmas, sampler, check_schedule_dtype(sampler.sigmas, dtype))

    def integrate(self, denoiser, noise, key, save_trajectory):
        sampler = self._in_dtype(noise.dtype)
        sig = sampler.sigmas
        # A start that contradicts start_at_infinity (possible only for a schedule traced at construction)
        # is reported through the non-finite index: inf x noise is not finite, and a finite sigmas[0] with
        # start_at_infinity=True marks the first state as bad. The driver then names the cause (an
        # eqx.error_if here cost up to 40 % on CPU for the stochastic samplers).
        if self.start_at_infinity:  # row 0 of a trajectory is then the noise itself (x / sigma at inf)
            x = denoiser.at_infinity(noise) + sig[1] * noise
            first, head = 1, [noise[None], x[None]]
            bad = jnp.where(jnp.isinf(sig[0]), _first_nonfinite(x, jnp.asarray(-1, jnp.int32), 1), 1)
        else:
            x = sig[0] * noise
            first, head = 0, [x[None]]
            bad = _first_nonfinite(x, jnp.asarray(-1, jnp.int32), 0)
        state = sampler.init(denoiser, x, key)

        def body(carry, i):
            x, state, nfe, bad = carry
            x, state = sampler.step(denoiser, i, x, state, jax.random.fold_in(key, i))
            bad = _first_nonfinite(x, bad, i + 1)  # the state after step i is trajectory row i + 1
            return (x, state, nfe + sampler.step_nfe(i, denoiser.evaluations), bad), (x if save_trajectory else None)

        steps = jnp.arange(first, self.num_steps)
        nfe0 = denoiser.evaluations(sig[0]) if self.start_at_infinity else jnp.asarray(0, jnp.int32)
        (x, _, nfe, bad), traj = jax.lax.scan(body, (x, state, nfe0, bad), steps)
        if not save_trajectory:
            return Solution(x, nfe, first_nonfinite=bad)
        trajectory = jnp.concatenate(head + [traj], axis=0)
        return Solution(x, nfe, trajectory, sig, bad)


def ddim_step(x: Array, denoised: Array, sigma, sigma_next) -> Array:
    """Deterministic first-order step in EDM coordinates: x' = D + (sigma_next / sigma) (x - D).

    This is DDIM (eta = 0) and the Euler step of the probability-flow ODE. Computed as
    ``r x + (1 - r) D`` with ``r = sigma_next / sigma``: exact at sigma_next = 0 (returns D), and D is read
    once (XLA on CPU fused the two-use form ``D + r (x - D)`` 3-7x slower for cheap denoisers).
    """
    r = sigma_next / sigma
    return r * x + (1 - r) * denoised
