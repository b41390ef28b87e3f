"""The one driver: ``gm.sample(model, sampler, key, shape)`` and ``gm.solve`` (which also returns NFE
and, on request, the trajectory). Each is one ``eqx.filter_jit``-compiled program: arrays in the model,
the sampler, the key and the noise are traced, so new keys, parameters, schedules or noise of the same
shape reuse the compiled program; ``shape`` and ``save_trajectory`` are static.

After the program, one scalar comes back to the host: the index of the first non-finite state of a step
sampler (``Solution.first_nonfinite``). A model that returns NaN or inf then ends in a
:class:`~genmodels.errors.NonFiniteSampleError` naming the step and its noise level, never in silent NaN
samples. Called inside the user's own ``jit``, the driver checks the same index inside the program
(``eqx.error_if``: an ``equinox.EquinoxRuntimeError`` raised where that ``jit`` returns), without the step
in the message.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from genmodels._checks import check_key, is_concrete
from genmodels.errors import (
    ArgumentError,
    ArgumentTypeError,
    GenmodelsError,
    NonFiniteSampleError,
    ProtocolError,
    reraise_runtime_checks,
)
from genmodels.samplers._base import AbstractDenoiserSampler, AbstractSampler, AbstractStepSampler, Solution


def _check_shape_arg(shape) -> tuple[int, ...]:
    """``shape`` as a tuple of Python ints; any integer type is accepted (``numpy.int64`` batch sizes)."""
    msg = f"shape must be a non-empty tuple of positive ints such as (batch, dim), got {shape!r}."
    if isinstance(shape, (str, bytes)):
        raise ArgumentError(msg)
    try:
        dims = tuple(shape)
    except TypeError:  # one int: the batch size of scalar samples
        dims = (shape,)
    if len(dims) < 1 or any(isinstance(d, (bool, np.bool_)) for d in dims):
        raise ArgumentError(msg)
    try:
        dims = tuple(operator.index(d) for d in dims)
    except TypeError as err:
        raise ArgumentError(msg) from err
    if not all(d > 0 for d in dims):
        raise ArgumentError(msg)
    return dims


def _check_model(model) -> None:
    if model is None:
        raise ProtocolError(
            "model must be a model (a denoiser D(x, sigma) -> E[x0 | x], an object of gm.models / gm.targets, "
            "or an autoregressive model for gm.samplers.Ancestral), got None."
        )


def _narrow_noise_dtype(noise) -> np.dtype | None:
    """The noise's dtype when it is a floating dtype of 2 bytes or less (float16, bfloat16, float8): the
    only ones whose range a schedule can exceed in practice (float32 and float64 carry sigma < 9e18)."""
    if isinstance(noise, (jax.Array, np.ndarray)) and noise.dtype.itemsize <= 2:
        if jnp.issubdtype(noise.dtype, jnp.floating):
            return np.dtype(noise.dtype)
    return None


def _check_sharding(sharding, shape: tuple[int, ...], noise) -> jax.sharding.Sharding | None:
    """The sharding the samples are to have: ``sharding``, else that of noise spread over several devices,
    else ``None`` (no constraint). A sharding must split ``shape`` evenly (the batch axis first of all)."""
    if sharding is None:
        concrete = isinstance(noise, jax.Array) and not isinstance(noise, jax.core.Tracer)
        spread = concrete and len(noise.sharding.device_set) > 1  # inside the caller's jit: the caller's choice
        return noise.sharding if spread else None
    if not isinstance(sharding, jax.sharding.Sharding):
        raise ArgumentTypeError(
            "sharding must be a jax.sharding.Sharding of the samples, such as "
            f"NamedSharding(mesh, PartitionSpec('batch')), or None; got {type(sharding).__name__}."
        )
    try:
        shard = sharding.shard_shape(shape)
    except (ValueError, TypeError, IndexError) as err:
        raise ArgumentError(f"sharding {sharding} does not fit samples of shape {shape}: {err}") from err
    if shard[0] * (shape[0] // shard[0]) != shape[0]:
        raise ArgumentError(f"sharding {sharding} does not split the batch of {shape[0]} rows evenly.")
    return sharding


@eqx.filter_jit
def _solve(model, sampler, key, shape, noise, save_trajectory, sharding):
    sol = sampler.run(model, key, shape, noise, save_trajectory)
    if sharding is None:
        return sol
    return eqx.tree_at(lambda s: s.samples, sol, jax.lax.with_sharding_constraint(sol.samples, sharding))


def _nonfinite_error(sampler: AbstractSampler, row: int) -> GenmodelsError:
    """The error for the first non-finite trajectory row ``row`` (0 = start, i + 1 = after step i); the
    numbers are formatted here, on the host, after the program."""
    name = f"gm.samplers.{type(sampler).__name__}"
    hint = (
        "Check that the model returns finite values for every x and sigma of the schedule (and that its "
        "parameters are finite), and the sampler's options."
    )
    if not isinstance(sampler, AbstractStepSampler):
        return NonFiniteSampleError(f"{name} produced NaN or inf samples. {hint}", step=max(row - 1, 0))
    sig = [float(s) for s in jax.device_get(sampler.sigmas)]
    if row <= int(sampler.start_at_infinity) and math.isinf(sig[0]) != sampler.start_at_infinity:
        return ArgumentError(f"{name}: {sampler._infinity_message()}")  # from a schedule traced at construction
    if row == 0:
        return NonFiniteSampleError(
            f"{name}: the starting state sigmas[0] x noise = {sig[0]:.6g} x noise is not finite (overflow in "
            "the noise's dtype?). Use a smaller sigma_max or a wider dtype.",
            step=0, sigma=sig[0],
        )  # fmt: skip
    step = row - 1
    what = "the model's at_infinity(eps)" if step == 0 and sampler.start_at_infinity else "the model"
    return NonFiniteSampleError(
        f"{name}: step {step} (sigma {sig[step]:.6g} -> {sig[step + 1]:.6g}) produced NaN or inf; every earlier "
        f"state was finite. {hint} Look first at {what} at sigma = {sig[step]:.6g}.",
        step=step, sigma=sig[step],
    )  # fmt: skip


def _in_jit_messages(sampler: AbstractSampler) -> tuple[str, str]:
    """The two static messages of the in-program check: the start, then any later step."""
    name = f"gm.samplers.{type(sampler).__name__}"
    later = (
        f"{name}: a step produced NaN or inf samples (call gm.solve outside jit to learn the step and its "
        "sigma); check that the model returns finite values for every x and sigma of the schedule."
    )
    if not isinstance(sampler, AbstractStepSampler):
        return later, later
    if sampler.start_at_infinity:
        start = (
            f"{name}: the first step, from sigma = inf, produced NaN or inf: sigmas[0] is finite although "
            "start_at_infinity=True, or the model's at_infinity(eps) returned NaN or inf."
        )
    else:
        start = (
            f"{name}: the starting state sigmas[0] x noise is not finite: sigmas[0] is inf but the sampler "
            "has start_at_infinity=False (a schedule traced inside jit cannot be read: pass "
            "start_at_infinity=True, static), or sigmas[0] overflows the noise's dtype."
        )
    return start, later


def _in_jit_branch(sampler: AbstractSampler, row: Array) -> Array:
    first = int(sampler.start_at_infinity) if isinstance(sampler, AbstractStepSampler) else -1
    return jnp.where(row <= first, 0, 1)


def _raise_if_nonfinite(sampler: AbstractSampler, sol: Solution) -> Solution:
    """Return ``sol``, raising :class:`NonFiniteSampleError` if a state went non-finite (one scalar read
    after the program), or, inside the caller's ``jit``, checking it inside the program."""
    row = sol.first_nonfinite
    if row is None:
        return sol
    if not is_concrete(row):  # gm.solve inside the user's jit: the step index cannot reach a message
        return eqx.branched_error_if(sol, row >= 0, _in_jit_branch(sampler, row), _in_jit_messages(sampler))
    row = int(row)  # the one device -> host read
    if row >= 0:
        raise _nonfinite_error(sampler, row)
    return sol


@reraise_runtime_checks
def solve(
    model: Any,
    sampler: AbstractSampler,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    noise: Array | None = None,
    save_trajectory: bool = False,
    sharding: jax.sharding.Sharding | None = None,
) -> Solution:
    """Run ``sampler`` on ``model`` as one compiled program and return a :class:`Solution`.

    Args:
        model: a denoiser model (``gm.protocols.AbstractDenoiserModel``: the targets, ``gm.models``), a
            plain callable ``D(x, sigma) -> E[x0 | x]`` (x = x0 + sigma eps, sigma a scalar or one value per
            batch row), or an autoregressive model for ``Ancestral``.
        sampler: a sampler from ``gm.samplers``.
        key: one PRNG key; the same key gives the same samples.
        shape: output shape, batch first, e.g. ``(1024, 2)``; any integer type.
        noise: optional standard-normal array of ``shape`` to start from (scaled to the sampler's first
            noise level); continuous samplers only. Its dtype is the run's dtype (float16 refuses noise
            levels above 128, see ``gm.errors.ScheduleError``).
        save_trajectory: keep every intermediate state in ``Solution.trajectory``.
        sharding: optional ``jax.sharding.Sharding`` of the samples, typically
            ``NamedSharding(mesh, PartitionSpec("batch"))`` to split the batch over a mesh's devices; the
            samples come back with it. Without it, noise spread over several devices gives its sharding.
            Row j does not depend on the sharding (docs/batch_invariance.md). A sharding that does not
            split ``shape`` evenly is an ``ArgumentError``.

    Raises:
        NonFiniteSampleError: a step of the sampler produced NaN or inf (the error names the step and its
            sigma), checked after the program.
        RuntimeCheckError: a check inside the program failed (a traced schedule that is not descending,
            noise with NaN, an inf first entry without ``start_at_infinity``).
    """
    _check_model(model)
    if not isinstance(sampler, AbstractSampler):
        raise ArgumentTypeError(f"sampler must be a genmodels sampler (gm.samplers.*), got {type(sampler).__name__}.")
    check_key(key)
    shape = _check_shape_arg(shape)
    if not isinstance(save_trajectory, bool):
        raise ArgumentTypeError(f"save_trajectory must be a bool, got {save_trajectory!r}.")
    narrow = _narrow_noise_dtype(noise)
    if narrow is not None and isinstance(sampler, AbstractDenoiserSampler):
        sampler.check_dtype(narrow)
    sharding = _check_sharding(sharding, shape, noise)
    return _raise_if_nonfinite(sampler, _solve(model, sampler, key, shape, noise, save_trajectory, sharding))


def sample(
    model: Any,
    sampler: AbstractSampler,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    noise: Array | None = None,
    sharding: jax.sharding.Sharding | None = None,
) -> Array:
    """Samples of ``shape`` from ``model`` with ``sampler``: ``solve(...).samples`` (same checks and errors)."""
    return solve(model, sampler, key, shape, noise=noise, sharding=sharding).samples
