"""Adaptive samplers backed by diffrax: the probability-flow ODE and the reverse VE SDE.

Both solve in the time variable v = -log(sigma), which increases from -log(sigma_max) to -log(sigma_min).
The equations are the usual ones in sigma, reparametrised (dsigma = -sigma dv):

* ODE:  dx/dsigma = (x - D(x, sigma)) / sigma            <=>  dx/dv = D(x, e^-v) - x;
* SDE:  dx = -2 sigma score dsigma + sqrt(2 sigma) dW     <=>  dx = 2 (D(x, e^-v) - x) dv + sqrt(2) e^-v dB_v,

with score = (D - x) / sigma^2 and W, B Brownian motions in decreasing sigma and increasing v. In v the
dynamics happen on a uniform scale at every noise level, so an adaptive step controller wastes fewer
steps (measured on eight_gaussians with Dopri5 at rtol = atol = 1e-5: 20 steps and no rejections in v,
against 43 steps with 19 rejections in sigma). Integrating forward in v also keeps diffrax's Brownian
motion and Levy areas in their natural (forward-time) convention.

The whole solve is one ``diffrax.diffeqsolve`` inside the driver's single jit; the number of model
evaluations is derived from diffrax's step statistics (see :func:`solver_nfe`).
"""

from __future__ import annotations

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, Float, Int

from genmodels._checks import check_count, check_schedule_dtype, is_concrete
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.samplers._adaptive_rows import diffeqsolve, raise_on_result, solve_batch_or_rows
from genmodels.samplers._base import AbstractDenoiserSampler, Solution, count_param

_FIRST_STEP_FRACTION = 1.0 / 64  # initial step of an adaptive solve, as a fraction of [v0, v1]
_BROWNIAN_DEPTH = 18  # the Brownian tree resolves the v interval to 2^-18 of its length


def _as_float(value) -> Array:
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _evals_per_step(solver: dfx.AbstractSolver, *, sde: bool) -> tuple[int, int]:
    """(model calls per attempted step, extra calls at the start) for a supported diffrax solver.

    * explicit Runge-Kutta with s stages: s per step; first-same-as-last tableaus (Bosh3, Tsit5, Dopri5,
      Dopri8) reuse the last stage of an accepted step, and also of a rejected one (the first stage at
      the unchanged state is still valid), so s - 1 per step plus one call for the very first stage,
      made up front by :func:`fsal_state` (left to diffrax, that call would be repeated by every
      rejected attempt before the first accepted step, which its statistics cannot tell);
    * stochastic Runge-Kutta (ShARK, SRA1, SEA, SPaRK, GeneralShARK, SlowRK): the stages whose drift is
      not ignored by the tableau, never FSAL;
    * Euler (Euler-Maruyama for the SDE): 1 per step.

    diffrax's initial step-size selection costs nothing here: an explicit first step is always passed.
    """
    if isinstance(solver, dfx.Euler):
        return 1, 0
    if isinstance(solver, dfx.AbstractSRK):
        tab = solver.tableau
        ignored = 0 if tab.ignore_stage_f is None else int(np.sum(tab.ignore_stage_f))
        return len(tab.b_sol) - ignored, 0
    if isinstance(solver, dfx.AbstractERK) and not isinstance(solver.tableau, dfx.MultiButcherTableau):
        tab = solver.tableau
        if tab.fsal and not sde:
            return tab.num_stages - 1, 1
        if not tab.fsal:
            return tab.num_stages, 0
    kind = "SDE" if sde else "ODE"
    raise ArgumentError(
        f"unsupported {kind} solver {type(solver).__name__}: use an explicit Runge-Kutta solver "
        + (
            "without first-same-as-last stages (diffrax.Heun, Midpoint, Ralston), a stochastic Runge-Kutta "
            "solver (diffrax.ShARK, SRA1, SPaRK, SEA, GeneralShARK, SlowRK) or diffrax.Euler."
            if sde
            else "(diffrax.Dopri5, Tsit5, Dopri8, Bosh3, Heun, Midpoint, Ralston)."
        )
    )


def solver_nfe(solver: dfx.AbstractSolver, num_steps: Int[Array, ""], *, sde: bool = False) -> Int[Array, ""]:
    """Model evaluations of a diffrax solve: per-step calls x ``num_steps`` (diffrax's count, rejected
    steps included) + start-up calls. Verified against counted calls in ``tests/test_adaptive.py``."""
    per_step, start = _evals_per_step(solver, sde=sde)
    return (per_step * jnp.asarray(num_steps) + start).astype(jnp.int32)


def fsal_state(solver: dfx.AbstractSolver, term: dfx.ODETerm, t0, y0):
    """``solver_state`` for ``diffeqsolve`` with the first-same-as-last stage f(t0, y0) evaluated once up
    front (one model call), or ``None`` for solvers without that stage. diffrax's Runge-Kutta state is
    (first_step, f0); with first_step False every attempt, rejected or not, reuses f0."""
    if _evals_per_step(solver, sde=False)[1] == 0:
        return None
    return jnp.asarray(False), term.vf(t0, y0, None)


def check_solver(solver, *, sde: bool, adaptive: bool) -> None:
    """Trace-time check that ``solver`` is a diffrax solver this module can count and, when ``adaptive``,
    one with an error estimate."""
    if not isinstance(solver, dfx.AbstractSolver):
        raise ArgumentTypeError(f"solver must be a diffrax solver such as diffrax.Dopri5(), got {solver!r}.")
    _evals_per_step(solver, sde=sde)
    if isinstance(solver, dfx.AbstractSRK):
        has_error_estimate = solver.tableau.b_error is not None
    else:
        has_error_estimate = isinstance(solver, dfx.AbstractAdaptiveSolver)
    if adaptive and not has_error_estimate:
        raise ArgumentError(
            f"solver {type(solver).__name__} has no error estimate, so it cannot take adaptive steps; "
            + ("pass steps=N for fixed steps or " if sde else "")
            + "pick an adaptive solver (e.g. diffrax.Dopri5() for the ODE, diffrax.ShARK() for the SDE)."
        )


def check_sigma_range(sigma_min, sigma_max) -> None:
    """Eager check 0 < sigma_min < sigma_max < inf (traced values are checked by :func:`checked_range`)."""
    if not (is_concrete(sigma_min) and is_concrete(sigma_max)):
        return
    lo, hi = np.asarray(sigma_min, dtype=np.float64), np.asarray(sigma_max, dtype=np.float64)
    if lo.shape != () or hi.shape != ():
        raise ArgumentError(f"sigma_min and sigma_max must be scalars, got shapes {lo.shape} and {hi.shape}.")
    if not (np.isfinite(hi) and 0 < lo < hi):
        raise ArgumentError(f"need 0 < sigma_min < sigma_max < inf, got sigma_min={float(lo)}, sigma_max={float(hi)}.")


def check_tolerances(rtol, atol) -> None:
    for name, value in (("rtol", rtol), ("atol", atol)):
        if is_concrete(value):
            v = np.asarray(value, dtype=np.float64)
            if v.shape != () or not (np.isfinite(v) and v > 0):
                raise ArgumentError(f"{name} must be a finite number > 0, got {value!r}.")


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a bool (static), got {value!r}.")


def check_max_steps(max_steps, name: str = "max_steps", minimum: int = 1) -> None:
    """Eager check of a static count (it fixes a buffer size or loop length)."""
    check_count(name, max_steps, minimum)


def checked_range(sigma_min, sigma_max, dtype):
    """sigma_min, sigma_max as ``dtype`` scalars, with an in-program check of 0 < sigma_min < sigma_max."""
    lo, hi = jnp.asarray(sigma_min, dtype), jnp.asarray(sigma_max, dtype)
    ok = (lo > 0) & (lo < hi) & jnp.isfinite(hi)
    lo, hi = eqx.error_if((lo, hi), ~ok, "need 0 < sigma_min < sigma_max < inf.")
    return lo, hi


def raise_if_failed(value, sol: dfx.Solution, who: str, max_steps: int):
    """Return ``value``, raising inside the program (``eqx.error_if``) if the diffrax solve failed."""
    return raise_on_result(value, sol.result, who, max_steps)


def _save_at(v0, v1, num_saved: int, save_trajectory: bool, unit_time: bool = False):
    """SaveAt for the final state only, or for ``num_saved`` levels log-uniform in sigma (uniform in v),
    and those levels; with ``unit_time`` the solve's time is u = (v - v0) / (v1 - v0) in [0, 1]."""
    if not save_trajectory:
        return dfx.SaveAt(t1=True), None
    vs = jnp.clip(jnp.linspace(v0, v1, num_saved), v0, v1)
    if unit_time:
        return dfx.SaveAt(ts=jnp.linspace(0.0, 1.0, num_saved, dtype=vs.dtype)), jnp.exp(-vs)
    return dfx.SaveAt(ts=vs), jnp.exp(-vs)


class _AdaptiveBase(AbstractDenoiserSampler):
    sigma_max: Float[Array, ""] = eqx.field(default=80.0, converter=_as_float)
    sigma_min: Float[Array, ""] = eqx.field(default=0.002, converter=_as_float)

    @property
    def sigma_start(self):
        return self.sigma_max

    def check_dtype(self, dtype):
        check_schedule_dtype(self.sigma_max, dtype, "sigma_max")

    def _range(self, dtype):
        """(sigma_min, v0 = -log sigma_max, v1 = -log sigma_min) in ``dtype``, range-checked (also against
        the largest noise level ``dtype`` carries)."""
        lo, hi = checked_range(self.sigma_min, self.sigma_max, dtype)
        hi = check_schedule_dtype(hi, dtype, "sigma_max")
        return lo, -jnp.log(hi), -jnp.log(lo)


class ODE(_AdaptiveBase):
    """Adaptive solve of the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma from sigma_max
    down to sigma_min (in v = -log sigma: dx/dv = D - x), with a diffrax solver and a PID step controller.

    Returns x at **sigma_min** (no final denoising step): for an exact denoiser this is a sample of the
    data convolved with N(0, sigma_min^2). ``Solution.nfe`` is the exact number of denoiser calls,
    rejected steps included (:func:`solver_nfe`). With ``save_trajectory`` the state is saved at
    ``num_saved`` levels log-uniform from sigma_max to sigma_min (``Solution.levels``; row 0 is the start,
    the last row the returned samples), interpolated by the solver's dense output.

    By default (``per_sample=False``) the batch is solved as one system: one step size for all rows,
    from the RMS error over the whole batch, and ``Solution.nfe`` is a scalar. With ``per_sample=True``
    every row has its own step-size controller (``jax.vmap`` of the solve over rows): row j no longer
    depends on the other rows (the same at any batch size or sharding), each row meets ``rtol`` / ``atol``
    by its own error, and ``Solution.nfe`` has shape (B,), the calls row j needed. The program still runs
    until the slowest row is done, so it costs max_j nfe_j batched model calls (docs/batch_invariance.md).

    Args:
        sigma_max, sigma_min: noise range (traced: new values do not recompile).
        rtol, atol: PID controller tolerances (traced).
        solver: an adaptive explicit Runge-Kutta solver from diffrax (default ``diffrax.Dopri5()``).
        max_steps: bound on attempted steps (static); running out raises a runtime error saying so.
        num_saved: trajectory length when ``save_trajectory`` (static).
        per_sample: one step-size controller per row (static, default False; see above).
    """

    rtol: Float[Array, ""] = eqx.field(default=1e-5, converter=_as_float)
    atol: Float[Array, ""] = eqx.field(default=1e-5, converter=_as_float)
    solver: dfx.AbstractSolver = dfx.Dopri5()
    max_steps: int = eqx.field(default=4096, static=True, converter=count_param)
    num_saved: int = eqx.field(default=33, static=True, converter=count_param)
    per_sample: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        check_sigma_range(self.sigma_min, self.sigma_max)
        check_tolerances(self.rtol, self.atol)
        check_max_steps(self.max_steps)
        check_max_steps(self.num_saved, "num_saved", 2)
        _check_bool("per_sample", self.per_sample)
        check_solver(self.solver, sde=False, adaptive=True)

    @property
    def order(self) -> int:
        """The diffrax solver's order (5 for Dopri5): the global error of a fixed-step solve; adaptive
        steps aim at ``rtol`` / ``atol`` instead."""
        return int(self.solver.order(dfx.ODETerm(lambda v, x, args: x)))

    @property
    def deterministic(self) -> bool:
        return True

    def integrate(self, denoiser, noise, key, save_trajectory):
        dtype = noise.dtype
        _, v0, v1 = self._range(dtype)
        saveat, levels = _save_at(v0, v1, self.num_saved, save_trajectory)
        controller = dfx.PIDController(rtol=self.rtol.astype(dtype), atol=self.atol.astype(dtype))

        def solve(denoise, x0, key):
            term = dfx.ODETerm(lambda v, x, args: denoise(x, jnp.exp(-v)) - x)
            state = fsal_state(self.solver, term, v0, x0)
            dt0 = (v1 - v0) * _FIRST_STEP_FRACTION
            return diffeqsolve(term, self.solver, v0, v1, dt0, x0, saveat=saveat, controller=controller,
                               max_steps=self.max_steps, solver_state=state)  # fmt: skip

        x0 = jnp.exp(-v0) * noise
        ys, steps, result = solve_batch_or_rows(solve, denoiser, x0, key, self.per_sample)
        ys = raise_on_result(ys, result, "gm.samplers.ODE", self.max_steps)
        nfe = solver_nfe(self.solver, steps)
        if not save_trajectory:
            return Solution(ys[-1], nfe)
        return Solution(ys[-1], nfe, ys, levels.astype(dtype))


def _levy_area(solver) -> type:
    """The cheapest Brownian increment type ``solver`` accepts."""
    if isinstance(solver, dfx.AbstractSRK):
        needed = solver.minimal_levy_area
        for kind in (dfx.BrownianIncrement, dfx.SpaceTimeLevyArea, dfx.SpaceTimeTimeLevyArea):
            if issubclass(kind, needed):
                return kind
    return dfx.BrownianIncrement


class SDE(_AdaptiveBase):
    """The reverse VE SDE dx = -2 sigma score dsigma + sqrt(2 sigma) dW, sigma from sigma_max down to
    sigma_min, with score = (D(x, sigma) - x) / sigma^2; solved with diffrax in v = -log sigma, where
    dx = 2 (D - x) dv + sqrt(2) sigma dB_v. The noise is additive (it depends on v only), so strong-order
    1.5 additive-noise solvers apply: the default ``diffrax.ShARK()`` with adaptive (PID) steps.

    The Brownian motion is a ``diffrax.VirtualBrownianTree`` keyed by the sampler key, resolved to
    2^-18 of the v range (about 4e-5 for the default sigmas): the same key gives the same samples,
    whatever steps the controller takes. diffrax runs in the unit time u = (v - v0) / (v1 - v0), where
    dx = 2 L (D - x) du + sqrt(2 L) sigma dB_u with L = v1 - v0 (the same equation; it gives the tree
    the constant interval [0, 1]: a tree over a traced interval drew other numbers when XLA partitioned
    the batch over several devices).

    Adaptive steps are per row by default (``per_sample=True``): every row is its own solve (``jax.vmap``
    over rows) with its own step-size controller and its own Brownian tree, keyed ``fold_in(key, j)``, so
    row j is the same at any batch size, device count or chunking, and ``Solution.nfe`` has shape (B,):
    the calls row j needed (the final denoising included). The program runs until the slowest row is
    done (max_j nfe_j batched model calls; docs/batch_invariance.md). ``per_sample=False`` solves the
    batch as one system (one step size from the RMS error over all rows; scalar ``nfe``), which makes a
    row depend on the others. With fixed steps (``steps=N``) the option has no effect: the batch is one
    solve on the shared grid, and row j of its Brownian tree is already the same at any batch size
    (partitionable threefry); ``nfe`` is a scalar.

    With ``denoise_final=True`` (default) the result is the Tweedie denoising x0 = D(x(sigma_min),
    sigma_min), one more model call; otherwise x(sigma_min) itself, a sample of the data convolved with
    N(0, sigma_min^2). A saved trajectory holds x at ``num_saved`` levels log-uniform in sigma (before the
    final denoising; between solver steps the solver's interpolation, linear for the stochastic solvers);
    ``Solution.nfe`` counts every drift evaluation plus the final denoising.

    Args:
        sigma_max, sigma_min: noise range (traced).
        solver: diffrax SDE solver: ShARK (default), SRA1, SPaRK adaptive or fixed; SEA, GeneralShARK,
            SlowRK, Euler (Euler-Maruyama) with fixed steps; Heun, Midpoint, Ralston either way.
        steps: ``None`` (default) for adaptive steps with ``rtol`` / ``atol``; an int for that many fixed
            steps, uniform in log sigma (static).
        rtol, atol: PID tolerances for adaptive steps (traced; default 1e-2: an SDE solution's error is
            dominated by sampling noise well before that).
        max_steps: bound on attempted adaptive steps (static).
        denoise_final: finish with x0 = D(x, sigma_min) (static).
        num_saved: trajectory length when ``save_trajectory`` (static).
        per_sample: one step-size controller and Brownian motion per row for adaptive steps (static,
            default True; see above).
    """

    solver: dfx.AbstractSolver = dfx.ShARK()
    steps: int | None = eqx.field(default=None, static=True, converter=count_param)
    rtol: Float[Array, ""] = eqx.field(default=1e-2, converter=_as_float)
    atol: Float[Array, ""] = eqx.field(default=1e-2, converter=_as_float)
    max_steps: int = eqx.field(default=4096, static=True, converter=count_param)
    denoise_final: bool = eqx.field(default=True, static=True)
    num_saved: int = eqx.field(default=33, static=True, converter=count_param)
    per_sample: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        check_sigma_range(self.sigma_min, self.sigma_max)
        check_tolerances(self.rtol, self.atol)
        check_max_steps(self.max_steps)
        check_max_steps(self.num_saved, "num_saved", 2)
        _check_bool("per_sample", self.per_sample)
        if self.steps is not None:
            check_max_steps(self.steps, "steps")
        if not isinstance(self.denoise_final, bool):
            raise ArgumentTypeError(f"denoise_final must be a bool, got {self.denoise_final!r}.")
        check_solver(self.solver, sde=True, adaptive=self.steps is None)

    @property
    def order(self) -> None:
        """No stated weak order (diffrax states its solvers' strong order, ``solver.strong_order(terms)``,
        for a given Brownian path)."""
        return None

    @property
    def deterministic(self) -> bool:
        return False

    def integrate(self, denoiser, noise, key, save_trajectory):
        dtype = noise.dtype
        sigma_min, v0, v1 = self._range(dtype)
        length = v1 - v0  # the solve runs in u = (v - v0) / length in [0, 1]; see the class docstring
        if self.steps is None:
            controller = dfx.PIDController(rtol=self.rtol.astype(dtype), atol=self.atol.astype(dtype))
            dt0, max_steps = _FIRST_STEP_FRACTION, self.max_steps
        else:
            controller = dfx.StepTo(ts=jnp.linspace(0.0, 1.0, self.steps + 1, dtype=dtype).at[-1].set(1.0))
            dt0, max_steps = None, self.steps
        saveat, levels = _save_at(v0, v1, self.num_saved, save_trajectory, unit_time=True)

        def solve(denoise, x0, key):
            def drift(u, x, args):
                return 2.0 * length * (denoise(x, jnp.exp(-(v0 + length * u))) - x)

            def diffusion(u, x, args):
                scale = jnp.sqrt(2.0 * length) * jnp.exp(-(v0 + length * u))
                return lx.DiagonalLinearOperator(jnp.full(x.shape, scale, dtype))

            shape = jax.ShapeDtypeStruct(x0.shape, dtype)
            tol = 2.0**-_BROWNIAN_DEPTH
            brownian = dfx.VirtualBrownianTree(0.0, 1.0, tol, shape, key, levy_area=_levy_area(self.solver))
            terms = dfx.MultiTerm(dfx.ODETerm(drift), dfx.ControlTerm(diffusion, brownian))
            return diffeqsolve(terms, self.solver, 0.0, 1.0, dt0, x0, saveat=saveat, controller=controller,
                               max_steps=max_steps)  # fmt: skip

        per_sample = self.per_sample and self.steps is None
        ys, steps, result = solve_batch_or_rows(solve, denoiser, jnp.exp(-v0) * noise, key, per_sample)
        ys = raise_on_result(ys, result, "gm.samplers.SDE", max_steps)
        nfe = solver_nfe(self.solver, steps, sde=True)
        x = ys[-1]
        if self.denoise_final:
            x = denoiser(x, sigma_min)
            nfe = nfe + 1
        if not save_trajectory:
            return Solution(x, nfe)
        return Solution(x, nfe, ys, levels.astype(dtype))
