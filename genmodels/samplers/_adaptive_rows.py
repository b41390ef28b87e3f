"""One diffrax solve for the whole batch, or one per row (``per_sample``): the shared machinery of
``gm.samplers.ODE`` and ``gm.samplers.SDE``.

A batch solve integrates the (B, *dims) state as one system: one step size for every row, chosen by the
PID controller from the RMS error over all rows. A row's result then depends on the other rows (their
errors move the shared steps): row 0 of a batch of 64 differs from a batch of 1 by a few 1e-3 for the
default SDE tolerances.

A per-row solve is ``jax.vmap`` over rows of the same solve on a (*dims) state: each row has its own
steps, its own error norm and (for the SDE) its own Brownian motion, keyed ``fold_in(key, j)``. Row j is
then a function of (key, j, its noise) alone, whatever the batch, the device count or the chunking, and
its number of model evaluations is its own (``Solution.nfe`` of shape (B,)). The model is still called
on the whole batch at once (vmap batches the call; each row at its own sigma), but a vmapped while loop
runs until its slowest row has finished: rows that are done are carried along unchanged, so the program
costs max_j nfe_j batched model calls however few the typical row needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

# (ys, num_steps, result) of one diffeqsolve: what integrate needs from it
Solved = tuple[Array, Array, Any]


def raise_on_result(value, result, who: str, max_steps: int):
    """Return ``value``, raising inside the program (``eqx.branched_error_if``) if any diffrax solve
    failed; ``result`` is one solve's ``RESULTS`` or a batch of them (per-row solves)."""
    failed = jnp.any(result != dfx.RESULTS.successful)
    hit_max = jnp.any(result == dfx.RESULTS.max_steps_reached)
    msgs = (
        f"{who}: diffrax used all max_steps={max_steps} steps without reaching the end of the noise range. "
        "Increase max_steps, loosen rtol/atol, or check that the model returns finite values (NaN or inf "
        "from the model makes every step fail and shrink).",
        f"{who}: the diffrax solve failed (non-finite values or a step-size underflow). Check that the model "
        "returns finite values for every x and sigma in [sigma_min, sigma_max].",
    )
    return eqx.branched_error_if(value, failed, jnp.where(hit_max, 0, 1), msgs)


def row_denoiser(denoiser: Callable) -> Callable:
    """D for one row: the model sees a batch of one (``x[None]``), which ``vmap`` turns back into the whole
    batch with one sigma per row."""
    return lambda x, sigma: denoiser(x[None], sigma)[0]


def row_keys(key: PRNGKeyArray, batch: int) -> PRNGKeyArray:
    """Row j's key, ``fold_in(key, j)``: a function of (key, j) only."""
    return jax.vmap(lambda j: jax.random.fold_in(key, j))(jnp.arange(batch))


# XLA:CPU compiles a vmapped solve over one row differently from one over several (the size-1 batch
# dimension is simplified away), and the last bit of a state then differs; the step-size controller turns
# that bit into different steps (the error estimate is a small difference of large stage values), so row 0
# of a batch of 1 ended 3e-3 away from row 0 of a batch of 64 with the SDE's defaults. A batch of 1 is
# therefore solved as two copies of its row (same state, same key: the copy costs no extra iteration);
# batches of 2 to 100 gave bitwise the same rows as each other (docs/batch_invariance.md).


def solve_batch_or_rows(
    solve: Callable[[Callable, Array, PRNGKeyArray], Solved],
    denoiser: Callable,
    x0: Array,
    key: PRNGKeyArray,
    per_sample: bool,
) -> Solved:
    """``solve(denoiser, x0, key)`` on the whole batch, or, with ``per_sample``, vmapped over rows with
    the row denoiser and the row keys; ``ys`` comes back as (saved, B, *dims) either way, ``num_steps``
    and ``result`` as scalars or (B,) arrays."""
    if not per_sample:
        return solve(denoiser, x0, key)
    one = row_denoiser(denoiser)
    batch, keys = x0.shape[0], row_keys(key, x0.shape[0])
    if batch == 1:  # two copies of the row: see the note above
        x0, keys = jnp.concatenate([x0, x0]), jnp.concatenate([keys, keys])
    ys, steps, result = jax.vmap(lambda x, k: solve(one, x, k))(x0, keys)
    ys, steps, result = jax.tree.map(lambda a: a[:batch], (ys, steps, result))
    return jnp.moveaxis(ys, 0, 1), steps, result


def diffeqsolve(terms, solver, v0, v1, dt0, x0, *, saveat, controller, max_steps, solver_state=None) -> Solved:
    """``diffrax.diffeqsolve`` with ``throw=False`` (failures are raised by :func:`raise_on_result`),
    reduced to what the samplers read."""
    sol = dfx.diffeqsolve(
        terms,
        solver,
        v0,
        v1,
        dt0,
        x0,
        saveat=saveat,
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
        solver_state=solver_state,
    )
    return sol.ys, sol.stats["num_steps"], sol.result
