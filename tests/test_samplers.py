"""Fixed-step samplers against analytic truth.

Every concrete ``AbstractStepSampler`` exported by ``gm.samplers`` is discovered and tested, so a new
sampler is one library file plus one export line (``build`` gives it its defaults unless it needs special
arguments). What a sampler is tested for is read off the sampler itself: its stated ``order`` is measured
(pathwise on the closed-form Gaussian ODE when it is ``deterministic``; the weak order, in the slow suite,
when it is stochastic), its ``deterministic`` flag is checked against what the key does, and its NFE,
trajectories, recompilation and option checks are tested for every sampler.

The oracles are exact: the probability-flow ODE of a diagonal Gaussian has a closed-form solution, and a
Gaussian mixture has a closed-form denoiser, so the samplers' outputs can be compared with the true
component weights and spreads. Cost per sampler is bounded: the generic tests run on batches of 64 and
share compiled programs (same model class, shapes and static options); only the two distribution tests
(mixture weights, flow matching) take large batches.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import COUNTER, Probe, exported_samplers, x64_mode
from helpers import build_step_sampler as build

import genmodels as gm
from genmodels.errors import ArgumentError, ArgumentTypeError, NonFiniteSampleError, ProtocolError, ScheduleError
from genmodels.samplers import AbstractStepSampler
from genmodels.samplers._multistep import AbstractMultistepSampler, RungeKuttaStart

SAMPLERS = exported_samplers(AbstractStepSampler)
IDS = [c.__name__ for c in SAMPLERS]
S = gm.samplers


def mixture(shift=0.0):
    """Three well-separated components with unequal weights and spreads."""
    means = jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]]) + shift
    return gm.targets.GaussianMixture(jnp.array([0.5, 0.3, 0.2]), means, jnp.array([0.3, 0.5, 0.4]))


MIX = mixture()
SMALL = (64, 2)
SCHEDULE = gm.schedules.karras(8, 0.01, 40.0)  # 9 entries, ends in 0
SCHEDULE_POS = gm.schedules.karras(8, 0.01, 40.0, final_zero=False)  # 9 entries, ends at 0.01
SCHEDULE_INF = gm.schedules.uniform_t(gm.paths.Linear(), 8)  # 9 entries, [inf, ..., 0]
NOISE = jax.random.normal(jax.random.key(42), SMALL)

# What each sampler says about itself with its default options (read once; building is cheap).
DEFAULTS = {cls: build(cls, SCHEDULE) for cls in SAMPLERS}
PATHWISE = [c for c in SAMPLERS if DEFAULTS[c].deterministic and DEFAULTS[c].order is not None]
WEAK = [c for c in SAMPLERS if not DEFAULTS[c].deterministic and DEFAULTS[c].order is not None]


def test_discovery():
    names = set(IDS)
    expected = {"Euler", "Heun", "DDIM", "EulerAncestral", "DPMSolverPP2M", "DPMSolverPP3MSDE"}
    expected |= {"EulerMaruyama", "PredictorCorrector", "AnnealedLangevin"}
    assert expected <= names


def test_self_description():
    """What the known samplers state (the generic tests below then check that it holds), including the
    options that change it, and the conservative answer for a traced option."""

    def said(sampler):
        return sampler.order, sampler.deterministic

    stated = {c.__name__: said(DEFAULTS[c]) for c in SAMPLERS}
    assert stated["Euler"] == stated["DDIM"] == (1, True)
    assert stated["Heun"] == stated["DPMSolverPP2M"] == (2, True)
    assert stated["EulerAncestral"] == stated["EulerMaruyama"] == (1, False)
    assert stated["PredictorCorrector"] == stated["AnnealedLangevin"] == (None, False)
    assert stated["DPMSolverPP3MSDE"] == (None, False)
    assert said(S.Heun(SCHEDULE, s_churn=1.0)) == (None, False)
    assert said(S.Heun(SCHEDULE, s_churn=1.0, s_noise=0.0)) == (None, True)
    assert said(S.DDIM(SCHEDULE, eta=0.5)) == (1, False)
    assert said(S.EulerAncestral(SCHEDULE, eta=0.0)) == (1, True)
    assert said(S.EulerAncestral(SCHEDULE, s_noise=0.5)) == (None, False)
    assert said(S.DPMSolverPP3MSDE(SCHEDULE, eta=0.0)) == (2, True)
    assert said(S.ODE()) == (5, True) and said(S.SDE()) == (None, False)
    assert said(S.Ancestral()) == (None, False)

    @jax.jit
    def traced(eta):
        sampler = S.DDIM(SCHEDULE, eta=eta)
        assert (sampler.order, sampler.deterministic) == (None, False)  # an eta known only at run time
        return eta

    traced(0.0)


# ---- 1. convergence order: pathwise on the closed-form Gaussian ODE, weak on a Gaussian (slow) -----------


_ODE_ERRORS = {}
# two resolutions a factor 4 apart: a fit through 16, 32, 64 gives the same slopes to 0.01, at one more compile
ORDER_STEPS = (16, 64)


def order_steps(cls) -> tuple[int, ...]:
    """Step counts of the order test: (16, 64) up to order 2; finer, (32, 128), for higher orders, whose
    errors at 16 steps are not yet asymptotic on the Karras grid."""
    return ORDER_STEPS if DEFAULTS[cls].order is None or DEFAULTS[cls].order <= 2 else (32, 128)


def _gaussian_ode_errors(cls, **kwargs):
    """Max end-point error at sigma_min vs the exact probability-flow ODE solution for N(m, diag(s^2)):
    x(sigma) - m = (x_T - m) sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_T^2). Cached across tests.

    A multistep sampler runs with ``RungeKuttaStart()`` (higher-order starting values), so that the error
    shows the method's own order rather than that of its lower-order warm start (see ``_multistep.py``;
    the orders with the default warm start are recorded in docs/samplers.md)."""
    if issubclass(cls, AbstractMultistepSampler) and "warm_start" not in kwargs:
        kwargs = {**kwargs, "warm_start": RungeKuttaStart()}
    cache_key = (cls, tuple(sorted(kwargs.items(), key=lambda kv: kv[0])))
    if cache_key in _ODE_ERRORS:
        return _ODE_ERRORS[cache_key]
    m, s = jnp.array([0.5, -1.0]), jnp.array([1.0, 0.3])
    target = gm.targets.DiagonalGaussian(m, s)
    z = jax.random.normal(jax.random.key(0), (16, 2), jnp.float64)
    errors = []
    for n in order_steps(cls):
        sig = gm.schedules.karras(n, 0.05, 10.0, final_zero=False)
        x = gm.sample(target, build(cls, sig, **kwargs), jax.random.key(1), (16, 2), noise=z)
        assert x.dtype == jnp.float64
        x_t = sig[0] * z
        exact = m + (x_t - m) * jnp.sqrt(s**2 + sig[-1] ** 2) / jnp.sqrt(s**2 + sig[0] ** 2)
        errors.append(float(jnp.max(jnp.abs(x - exact))))
    _ODE_ERRORS[cache_key] = np.array(errors)
    return _ODE_ERRORS[cache_key]


def _order(errors, steps=ORDER_STEPS):
    return -np.polyfit(np.log(steps), np.log(errors), 1)[0]


@pytest.mark.parametrize("cls", PATHWISE, ids=[c.__name__ for c in PATHWISE])
def test_convergence_order(x64, cls):
    """Every deterministic sampler converges on the exact ODE solution with the order it states."""
    errors = _gaussian_ode_errors(cls)
    assert np.all(np.diff(errors) < 0), errors
    measured = _order(errors, order_steps(cls))
    assert abs(measured - DEFAULTS[cls].order) < 0.3, (measured, errors)


def test_dpmsolver_3m_ode_order(x64):
    """DPM-Solver++(3M) with eta = 0 (k-diffusion's coefficients, see its docstring) converges with
    order 2 on a fixed grid, with an error below 2M's."""
    e3, e2 = _gaussian_ode_errors(S.DPMSolverPP3MSDE, eta=0.0), _gaussian_ode_errors(S.DPMSolverPP2M)
    assert abs(_order(e3) - S.DPMSolverPP3MSDE(SCHEDULE, eta=0.0).order) < 0.25, (_order(e3), e3)
    assert np.all(e3 < e2), (e3, e2)


WEAK_STEPS = (32, 64, 128)


@pytest.mark.slow
@pytest.mark.parametrize("cls", WEAK, ids=[c.__name__ for c in WEAK])
def test_weak_order(x64, cls):
    """Every stochastic sampler with a stated order has that weak order: started from the exact marginal
    N(0, s^2 + sigma_T^2) of a Gaussian N(0, s^2), an exact sampler ends at N(0, s^2 + sigma_end^2); the
    error of the end variance (2^18 samples: Monte Carlo error 0.3 %, a tenth of the smallest bias) falls
    like h^order."""
    s, batch = 1.0, 2**18
    target = gm.targets.DiagonalGaussian(jnp.zeros(1), jnp.full((1,), s))
    errors = []
    for n in WEAK_STEPS:
        sig = gm.schedules.karras(n, 0.05, 10.0, final_zero=False)
        z = jax.random.normal(jax.random.key(n), (batch, 1), jnp.float64) * jnp.sqrt(s**2 + sig[0] ** 2) / sig[0]
        x = gm.sample(target, build(cls, sig), jax.random.key(1), (batch, 1), noise=z)
        errors.append(abs(float(jnp.mean(x**2)) - (s**2 + float(sig[-1]) ** 2)))
    assert abs(_order(errors, WEAK_STEPS) - DEFAULTS[cls].order) < 0.3, (_order(errors, WEAK_STEPS), errors)


# ---- 2. mixture weights and spreads with the exact denoiser -----------------------------------------------

KARRAS = gm.schedules.karras
MIXTURE_RUNS = {  # (sampler, batch): honest step counts, spread bias about 3-5% (tolerance 8%)
    "Euler": lambda: (S.Euler(KARRAS(128)), 16384),
    "Heun": lambda: (S.Heun(KARRAS(32)), 16384),
    "DDIM": lambda: (S.DDIM(KARRAS(128)), 16384),
    "EulerAncestral": lambda: (S.EulerAncestral(KARRAS(256)), 16384),
    "DPMSolverPP2M": lambda: (S.DPMSolverPP2M(KARRAS(48)), 16384),
    "DPMSolverPP3MSDE": lambda: (S.DPMSolverPP3MSDE(KARRAS(48)), 16384),
    "EulerMaruyama": lambda: (S.EulerMaruyama(KARRAS(512)), 16384),
    "PredictorCorrector": lambda: (S.PredictorCorrector(KARRAS(128)), 16384),
    # 1600 model calls per sample: a smaller batch; its weights are biased by about 0.012 at this budget
    "AnnealedLangevin": lambda: (
        S.AnnealedLangevin(gm.schedules.log_uniform(16, 0.03, 8.0), steps_per_level=100, step_size=0.2 * 0.03**2),
        8192,
    ),
}


def assert_mixture(x, target, weight_tol=0.03, std_tol=0.08):
    x = np.asarray(x)
    assert np.all(np.isfinite(x))
    comp = np.asarray(target.component_of(x))
    weights = np.bincount(comp, minlength=len(target.log_weights)) / len(x)
    np.testing.assert_allclose(weights, np.asarray(target.weights), atol=weight_tol)
    for k in range(len(weights)):
        spread = (x[comp == k] - np.asarray(target.means[k])).std(axis=0)
        np.testing.assert_allclose(spread, np.asarray(target.stds[k]), rtol=std_tol)


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_mixture_weights_and_spreads(cls):
    sampler, batch = MIXTURE_RUNS.get(cls.__name__, lambda: (build(cls, KARRAS(128)), 16384))()
    x = gm.sample(MIX, sampler, jax.random.key(3), (batch, 2))
    assert_mixture(x, MIX)


def test_langevin_stationary_variance():
    """On N(m, s^2) the Langevin chain at level sigma is linear: with v = s^2 + sigma^2 and step alpha,
    x' - m = (1 - alpha / (2v)) (x - m) + sqrt(alpha) z, whose stationary variance is
    v / (1 - alpha / (4v)) (not v: the discretisation bias of unadjusted Langevin). The final step to
    sigma = 0 is Tweedie's D, which scales x - m by s^2 / v."""
    m, s, sigma, alpha = jnp.array([1.0, -1.0]), 0.5, 0.5, 0.2
    v = s**2 + sigma**2
    sampler = S.AnnealedLangevin(jnp.array([2.0, sigma, 0.0]), steps_per_level=200, step_size=alpha)
    traj = gm.solve(gm.targets.DiagonalGaussian(m, s), sampler, jax.random.key(0), (8192, 2), save_trajectory=True)
    stationary = v / (1 - alpha / (4 * v))
    at_level, final = np.asarray(traj.trajectory[1]), np.asarray(traj.trajectory[2])
    np.testing.assert_allclose(at_level.mean(0), m, atol=0.04)
    np.testing.assert_allclose(at_level.var(0), stationary, rtol=0.05)  # v itself is 10% lower
    np.testing.assert_allclose(final.var(0), (s**2 / v) ** 2 * stationary, rtol=0.05)
    assert int(traj.nfe) == 2 * 200 + 1


# ---- 3-6, 9. keys, determinism, compilation, NFE, noise, trajectories -----------------------------------
# Two small programs per sampler: ``run(..., noise=None)`` and ``run_traj(..., noise=...)`` (always with a
# trajectory); the tests below reuse them. ``Probe`` (tests/helpers.py) counts traces and real calls.


def run(sampler, key, model=MIX):
    return gm.solve(Probe(model), sampler, key, SMALL)


def run_traj(sampler, key, noise=NOISE, model=MIX, nan_below=-np.inf):
    return gm.solve(Probe(model, nan_below), sampler, key, SMALL, noise=noise, save_trajectory=True)


def test_identities():
    """DDIM(eta=0) and EulerAncestral(eta=0) are Euler; one DPM++(3M) SDE step (eta=1) is the DDPM step."""
    key = jax.random.key(5)
    base = run_traj(S.Euler(SCHEDULE), key).samples
    for sampler in (S.DDIM(SCHEDULE, eta=0.0), S.EulerAncestral(SCHEDULE, eta=0.0)):
        np.testing.assert_allclose(run_traj(sampler, key).samples, base, rtol=1e-5, atol=1e-5)
    two = jnp.array([10.0, 2.0])
    a = gm.sample(MIX, S.DPMSolverPP3MSDE(two), key, SMALL, noise=NOISE)
    b = gm.sample(MIX, S.DDIM(two, eta=1.0), key, SMALL, noise=NOISE)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_keys(cls):
    """Same key, same samples; another key, other samples (from other step noise, or other starting
    noise when none is given: that path is shared by all samplers and checked on two of them)."""
    sampler = build(cls, SCHEDULE)
    a = run_traj(sampler, jax.random.key(0)).samples
    b = run_traj(sampler, jax.random.key(0)).samples
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(np.asarray(a)))
    if cls in (S.Euler, S.EulerAncestral):
        a = run(sampler, jax.random.key(0)).samples
        np.testing.assert_array_equal(a, run(sampler, jax.random.key(0)).samples)
        assert not np.allclose(a, run(sampler, jax.random.key(1)).samples)


def _perturbed(sampler, factor=0.9):
    """The same sampler with every number scaled (schedule stays descending, options stay valid)."""
    return jax.tree.map(lambda a: a * factor if eqx.is_inexact_array(a) else a, sampler)


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_no_recompilation(cls):
    sampler = build(cls, SCHEDULE)
    # numbers must be array leaves: filter_jit would make a Python float static (one compile per value)
    assert all(eqx.is_array(leaf) for leaf in jax.tree.leaves(sampler))
    run_traj(sampler, jax.random.key(0))
    traced = COUNTER.traces
    for factor, shift in [(0.9, 0.3), (0.8, -1.0)]:
        new = _perturbed(sampler, factor)
        run_traj(new, jax.random.key(2), noise=NOISE * factor, model=mixture(shift))
    assert COUNTER.traces == traced, "gm.solve retraced for new numbers of the same shapes"


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
@pytest.mark.parametrize("schedule", [SCHEDULE, SCHEDULE_POS], ids=["zero", "positive"])
def test_nfe_counts_real_calls(cls, schedule):
    sampler = build(cls, schedule)
    sol, calls = COUNTER.count(lambda: run_traj(sampler, jax.random.key(0)))
    assert calls > 0 and int(sol.nfe) == calls
    assert_step_nfe(sampler, calls)


def assert_step_nfe(sampler, calls):
    first = 1 if sampler.start_at_infinity else 0  # the step from inf makes one at_infinity call
    per_step = sum(int(sampler.step_nfe(jnp.asarray(i))) for i in range(first, sampler.num_steps))
    assert first + per_step == calls


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_trajectory(cls):
    sol = run_traj(build(cls, SCHEDULE), jax.random.key(0))
    assert sol.trajectory.shape == (len(SCHEDULE),) + SMALL
    np.testing.assert_array_equal(sol.trajectory[-1], sol.samples)
    np.testing.assert_array_equal(sol.levels, SCHEDULE)
    np.testing.assert_allclose(sol.trajectory[0], SCHEDULE[0] * NOISE, rtol=1e-6)  # the given noise is used
    assert np.all(np.isfinite(np.asarray(sol.trajectory)))
    assert int(sol.first_nonfinite) == -1


def test_trajectory_does_not_change_samples():
    sampler, key = S.Heun(SCHEDULE, s_churn=10.0), jax.random.key(0)
    plain = gm.solve(Probe(MIX), sampler, key, SMALL, noise=NOISE)
    traj = run_traj(sampler, key)
    assert plain.trajectory is None and plain.levels is None
    np.testing.assert_allclose(plain.samples, traj.samples, rtol=1e-5, atol=1e-5)
    assert int(plain.nfe) == int(traj.nfe)


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_given_noise(cls):
    """The given noise is used, and the key changes the samples exactly when the sampler says it is not
    ``deterministic``."""
    sampler = build(cls, SCHEDULE)
    a = run_traj(sampler, jax.random.key(0)).samples
    b = run_traj(sampler, jax.random.key(1)).samples
    c = run_traj(sampler, jax.random.key(0), noise=-NOISE).samples
    assert not np.allclose(a, c)
    if sampler.deterministic:
        np.testing.assert_array_equal(a, b)  # the key is unused once the noise is given
    else:
        assert not np.allclose(a, b)


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_given_noise_float64(cls):
    sampler = build(cls, SCHEDULE)
    single = run_traj(sampler, jax.random.key(0)).samples
    with x64_mode():
        noise, sig = NOISE.astype(jnp.float64), SCHEDULE.astype(jnp.float64)
        sol = gm.solve(MIX, build(cls, sig), jax.random.key(0), SMALL, noise=noise, save_trajectory=True)
        assert sol.samples.dtype == jnp.float64 and np.all(np.isfinite(np.asarray(sol.samples)))
        np.testing.assert_allclose(sol.trajectory[0], sig[0] * noise, rtol=1e-12)
    if sampler.deterministic:  # float32 and float64 agree
        np.testing.assert_allclose(single, sol.samples, atol=1e-3)


def test_float32_noise_with_float64_numbers(x64):
    """A sampler built under x64 (float64 schedule and options) run on float32 noise stays float32."""
    sampler = S.EulerAncestral(SCHEDULE.astype(jnp.float64), eta=0.5)
    assert sampler.eta.dtype == jnp.float64
    sol = gm.solve(MIX, sampler, jax.random.key(0), SMALL, noise=NOISE, save_trajectory=True)
    assert sol.samples.dtype == sol.trajectory.dtype == sol.levels.dtype == jnp.float32


# ---- 7. flow matching from sigma = inf ----------------------------------------------------------------


def linear_velocity(target):
    """Exact velocity u(x_t, t) = E[eps - x0 | x_t] of ``target`` on the Linear path x_t = (1-t) x0 + t eps,
    written in x_t directly so that it is finite at t = 1."""

    def u(x_t, t):
        a = (1.0 - t)[..., None, None] if jnp.ndim(t) == 1 else 1.0 - t
        tt = 1.0 - a
        var = a**2 * target.stds**2 + tt**2
        diff = x_t[:, None, :] - a * target.means
        lp = target.log_weights - 0.5 * jnp.sum(diff**2 / var + jnp.log(2 * jnp.pi * var), axis=-1)
        r = jax.nn.softmax(lp, axis=-1)[..., None]
        x0 = target.means + a * target.stds**2 / var * diff
        eps = tt / var * diff
        return jnp.sum(r * (eps - x0), axis=1)

    return u


FLOW_STEPS = {
    "EulerAncestral": 128,
    "DPMSolverPP3MSDE": 64,
    "EulerMaruyama": 256,
    "PredictorCorrector": 128,
    "AnnealedLangevin": 24,  # levels, 40 Langevin steps each
}
FLOW_SHAPE = (4096, 2)
FLOW_MODEL = gm.denoisers.from_velocity(linear_velocity(MIX))
FLOW_PROBE = Probe(FLOW_MODEL)


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_flow_matching_from_infinity(cls):
    """A velocity model on the Linear path, sampled on uniform_t (first entry inf): mixture weights and
    spreads, trajectory rows and levels, and real model calls (the at_infinity call included)."""
    model = gm.denoisers.from_velocity(linear_velocity(MIX))
    sig = gm.schedules.uniform_t(gm.paths.Linear(), FLOW_STEPS.get(cls.__name__, 32))
    sampler = build(cls, sig, steps_per_level=40) if cls is S.AnnealedLangevin else build(cls, sig)
    assert sampler.start_at_infinity
    noise = jax.random.normal(jax.random.key(8), FLOW_SHAPE)
    solve = lambda: gm.solve(Probe(model), sampler, jax.random.key(7), FLOW_SHAPE, noise=noise, save_trajectory=True)  # noqa: E731
    sol, calls = COUNTER.count(solve)
    assert int(sol.nfe) == calls
    assert_step_nfe(sampler, calls)
    assert sol.trajectory.shape == (len(sig),) + FLOW_SHAPE
    np.testing.assert_array_equal(sol.trajectory[0], noise)  # row 0, at sigma = inf, is the noise itself
    np.testing.assert_array_equal(sol.trajectory[-1], sol.samples)
    assert np.isinf(sol.levels[0]) and np.all(np.isfinite(np.asarray(sol.trajectory)))
    assert_mixture(sol.samples, MIX, weight_tol=0.035, std_tol=0.12)


def test_infinite_schedule_needs_a_limit():
    with pytest.raises(ValueError, match="at_infinity"):
        gm.sample(lambda x, s: MIX(x, s), S.Euler(SCHEDULE_INF), jax.random.key(0), SMALL)


def test_start_at_infinity_is_a_static_option():
    """A concrete schedule's inf start is read off it (or must agree with the option); under jit, where a
    traced ``uniform_t(Linear(), n)`` cannot be read, the option says it, and an inf first entry without
    it is a clear runtime error instead of NaN samples."""
    assert S.Euler(SCHEDULE_INF).start_at_infinity and not S.Euler(SCHEDULE).start_at_infinity
    with pytest.raises(ArgumentError, match="start_at_infinity=True"):
        S.Euler(SCHEDULE_INF, start_at_infinity=False)
    with pytest.raises(ArgumentError, match="sigmas\\[0\\] is finite"):
        S.Heun(SCHEDULE, start_at_infinity=True)
    with pytest.raises(ArgumentTypeError, match="start_at_infinity"):
        S.Euler(SCHEDULE, start_at_infinity=1)

    with pytest.raises(eqx.EquinoxRuntimeError, match="start_at_infinity=True"):  # raised by our jit
        jax.block_until_ready(sample_in_jit(FLOW_PROBE, SCHEDULE_INF))
    x = sample_in_jit(FLOW_PROBE, SCHEDULE_INF, True)
    assert x.shape == SMALL and np.all(np.isfinite(np.asarray(x)))
    with pytest.raises(eqx.EquinoxRuntimeError, match="sigmas\\[0\\] is finite"):
        jax.block_until_ready(sample_in_jit(FLOW_PROBE, SCHEDULE, True))
    # a sampler built inside jit and run outside it: the driver names the cause after the program (this is
    # the program of run_traj for Euler, reused: its first state is inf x noise)
    built_in_jit = eqx.filter_jit(lambda sigmas: S.Euler(sigmas))(SCHEDULE_INF)
    assert not built_in_jit.start_at_infinity
    with pytest.raises(ArgumentError, match="sigmas\\[0\\] is inf .* pass start_at_infinity=True"):
        run_traj(built_in_jit, jax.random.key(0))


@eqx.filter_jit
def sample_in_jit(model, sigmas, start_at_infinity=None):
    """gm.sample inside the caller's jit, with a sampler built there from a traced schedule."""
    sampler = S.Euler(sigmas, start_at_infinity=start_at_infinity)
    return gm.sample(model, sampler, jax.random.key(0), SMALL, noise=NOISE)


# ---- 8. non-finite samples are an error, naming the step --------------------------------------------------


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_nonfinite_model_names_the_step_and_sigma(cls):
    """A model that returns NaN below sigma = 1 (or everywhere) ends in an error naming the first step whose
    state went non-finite and its sigma; the programs of ``run_traj``, reused (the fault is a traced leaf).
    Step i evaluates the model at sigma_i, and some samplers (Heun's correction, Langevin at the next
    level) also at sigma_{i+1}: exactly so for the samplers issue 9 names."""
    sig = np.asarray(SCHEDULE)
    below = int(np.argmax(sig < 1.0))  # the first level below 1
    sampler = build(cls, SCHEDULE)
    with pytest.raises(NonFiniteSampleError) as err:
        run_traj(sampler, jax.random.key(0), nan_below=1.0)
    step = err.value.step
    expected = {S.Euler: below, S.DPMSolverPP2M: below, S.Heun: below - 1}.get(cls, step)
    assert step == expected and step in (below - 1, below)
    assert err.value.sigma == pytest.approx(float(sig[step]))
    assert f"step {step} (sigma {float(sig[step]):.6g} -> {float(sig[step + 1]):.6g})" in str(err.value)
    with pytest.raises(NonFiniteSampleError, match="step 0 ") as err:  # NaN everywhere: the first step
        run_traj(sampler, jax.random.key(0), nan_below=np.inf)
    assert err.value.step == 0 and err.value.sigma == pytest.approx(float(sig[0]))


def test_nonfinite_inside_jit():
    """Inside the caller's jit the index cannot reach the host before the program ends: the driver checks
    it in the program (a runtime error). The program of ``sample_in_jit`` above, reused."""
    assert np.all(np.isfinite(np.asarray(sample_in_jit(FLOW_PROBE, SCHEDULE_INF, True))))
    with pytest.raises(eqx.EquinoxRuntimeError, match="NaN or inf"):
        jax.block_until_ready(sample_in_jit(Probe(FLOW_MODEL, nan_below=1.0), SCHEDULE_INF, True))


def test_float16_schedule_range():
    """float16 overflows in sigma^2 above sigma = 128: such a schedule is refused (naming the dtype); a
    schedule within range samples in float16."""
    key, noise = jax.random.key(0), NOISE.astype(jnp.float16)
    with pytest.raises(ScheduleError, match="float16"):
        gm.sample(MIX, S.Euler(gm.schedules.karras(8, 0.01, 300.0)), key, SMALL, noise=noise)
    with pytest.raises(ScheduleError, match="float16"):
        gm.sample(MIX, S.ODE(sigma_max=300.0), key, SMALL, noise=noise)
    x = gm.sample(MIX, S.Euler(SCHEDULE), key, SMALL, noise=noise)
    assert x.dtype == jnp.float16 and np.all(np.isfinite(np.asarray(x)))


# ---- 9. bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sigmas, match",
    [
        ([1.0, 2.0, 0.0], "strictly descending"),
        ([1.0, 0.5, 0.5], "strictly descending"),
        ([1.0, -0.5], "non-negative"),
        ([float("nan"), 1.0, 0.0], "NaN"),
        ([1.0, float("inf"), 0.0], "inf"),
        ([1.0], "at least 2 entries"),
        (1.0, "1-D"),
        ([[1.0, 0.0]], "1-D"),
    ],
)
def test_bad_schedule(sigmas, match):
    for cls in SAMPLERS:
        with pytest.raises(ValueError, match=match):
            build(cls, sigmas)


def test_bad_traced_schedule():
    run = eqx.filter_jit(lambda s: gm.sample(MIX, S.Euler(s), jax.random.key(0), SMALL))
    with pytest.raises(eqx.EquinoxRuntimeError, match="strictly descending"):
        run(jnp.array([1.0, 2.0, 0.0]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: S.DDIM(SCHEDULE, eta=-1.0), "eta"),
        (lambda: S.EulerAncestral(SCHEDULE, s_noise=float("nan")), "s_noise"),
        (lambda: S.DPMSolverPP3MSDE(SCHEDULE, eta=-0.5), "eta"),
        (lambda: S.PredictorCorrector(SCHEDULE, snr=0.0), "snr"),
        (lambda: S.PredictorCorrector(SCHEDULE, corrector_steps=1.5), "corrector_steps"),
        (lambda: S.PredictorCorrector(SCHEDULE, norms="global"), "norms"),
        (lambda: S.AnnealedLangevin(SCHEDULE, steps_per_level=0), "steps_per_level"),
        (lambda: S.AnnealedLangevin(SCHEDULE, step_size=-1.0), "step_size"),
        (lambda: S.AnnealedLangevin(gm.schedules.karras(8)), "step_size.*too large"),
        (lambda: S.AnnealedLangevin(SCHEDULE, steps_per_level=1.5), "steps_per_level"),
        (lambda: S.Heun(SCHEDULE, s_churn=-5.0), "s_churn"),
        (lambda: S.Heun(SCHEDULE, s_churn=float("nan")), "s_churn"),
        (lambda: S.Heun(SCHEDULE, s_tmin=-1.0), "s_tmin"),
        (lambda: S.Heun(SCHEDULE, s_tmax=float("nan")), "s_tmax"),
        (lambda: S.Heun(SCHEDULE, s_tmax=-float("inf")), "s_tmax"),
        (lambda: S.Heun(SCHEDULE, s_tmin=2.0, s_tmax=1.0), "s_tmin <= s_tmax"),
        (lambda: S.Heun(SCHEDULE, s_noise=-1.0), "s_noise"),
        (lambda: S.DDIM(SCHEDULE, eta=float("inf")), "eta"),
        (lambda: S.EulerAncestral(SCHEDULE, eta=float("nan")), "eta"),
        (lambda: S.DPMSolverPP3MSDE(SCHEDULE, s_noise=-1.0), "s_noise"),
        (lambda: S.PredictorCorrector(SCHEDULE, snr=float("nan")), "snr"),
        (lambda: S.PredictorCorrector(SCHEDULE, corrector_steps=-1), "corrector_steps"),
    ],
)
def test_bad_options(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


@pytest.mark.parametrize("cls", SAMPLERS, ids=IDS)
def test_nan_options_are_refused(cls):
    """Every numeric option of every sampler refuses NaN, naming the option."""
    sampler = DEFAULTS[cls]
    names = [f.name for f in dataclasses.fields(sampler) if eqx.is_inexact_array(getattr(sampler, f.name))]
    for name in set(names) - {"sigmas"}:
        with pytest.raises(ArgumentError, match=name):
            build(cls, SCHEDULE, **{name: float("nan")})


def test_bad_driver_input():
    euler, key = S.Euler(SCHEDULE), jax.random.key(0)
    with pytest.raises(gm.errors.RuntimeCheckError, match="^noise contains NaN or inf"):
        gm.sample(MIX, euler, key, SMALL, noise=NOISE.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match=r"noise must have shape \(64, 2\)"):
        gm.sample(MIX, euler, key, SMALL, noise=NOISE[:10])
    with pytest.raises(TypeError, match="noise must have a floating dtype"):
        gm.sample(MIX, euler, key, SMALL, noise=jnp.zeros(SMALL, jnp.int32))
    for shape in [(0, 2), (2.5, 2), (), "ab", None, (True, 2)]:
        with pytest.raises(ValueError, match="shape must be"):
            gm.sample(MIX, euler, key, shape)
    with pytest.raises(ValueError, match="denoised array of the input's shape"):
        gm.sample(lambda x, s: x[:, :1], euler, key, SMALL)
    with pytest.raises(TypeError, match="sampler must be a genmodels sampler"):
        gm.sample(MIX, "euler", key, SMALL)
    with pytest.raises(TypeError, match="sampler must be a genmodels sampler"):
        gm.sample(MIX, SCHEDULE, key, SMALL)
    for bad_key in [0, np.array([1, 2]), jnp.zeros(3, jnp.uint32)]:
        with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
            gm.sample(MIX, euler, bad_key, SMALL)
    with pytest.raises(TypeError, match="save_trajectory must be a bool"):
        gm.solve(MIX, euler, key, SMALL, save_trajectory=1)


def test_driver_model_keys_and_integer_types():
    """No model is a clear error; so is a batch of keys (one key samples the whole batch); any integer
    type in the shape is accepted, and numpy ints give the same program and samples as Python ints."""
    euler, key = S.Euler(SCHEDULE), jax.random.key(0)
    with pytest.raises(ProtocolError, match="model must be .*got None"):
        gm.sample(None, euler, key, SMALL)
    for keys in (jax.random.split(key, 4), jax.random.split(jax.random.PRNGKey(0), 4)):
        with pytest.raises(ArgumentError, match="one PRNG key.*shape \\(4,\\)"):
            gm.sample(MIX, euler, keys, SMALL)
    expected = gm.sample(MIX, euler, key, SMALL, noise=NOISE)
    for shape in [(np.int64(64), np.int32(2)), np.array([64, 2]), (jnp.asarray(64), 2)]:
        np.testing.assert_array_equal(gm.sample(MIX, euler, key, shape, noise=NOISE), expected)
    assert S.AnnealedLangevin(SCHEDULE, steps_per_level=np.int64(3), step_size=1e-6).steps_per_level == 3
