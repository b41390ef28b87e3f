"""Adaptive diffrax samplers (gm.samplers.ODE / SDE) against analytic truth."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import COUNTER, Probe, exported_samplers

import genmodels as gm
from genmodels.samplers import ODE, SDE, AbstractDenoiserSampler, AbstractStepSampler
from genmodels.samplers._adaptive import fsal_state, solver_nfe

MU = jnp.array([0.5, -1.0, 2.0])
S = jnp.array([0.3, 1.0, 2.0])
SMIN, SMAX = 0.002, 80.0


def gaussian_flow(x, sigma_from, sigma_to):
    """Exact probability-flow ODE map for N(MU, diag S^2): x -> MU + sqrt(S^2+to^2)/sqrt(S^2+from^2) (x - MU)."""
    return MU + jnp.sqrt(S**2 + sigma_to**2) / jnp.sqrt(S**2 + sigma_from**2) * (x - MU)


def test_ode_endpoint_matches_closed_form_gaussian():
    g = gm.targets.DiagonalGaussian(MU, S)
    noise = jax.random.normal(jax.random.key(0), (256, 3))
    sol = gm.solve(g, ODE(), jax.random.key(1), (256, 3), noise=noise, save_trajectory=True)
    exact = gaussian_flow(SMAX * noise, SMAX, SMIN)
    err = jnp.abs(sol.samples - exact) / (1.0 + jnp.abs(exact))
    assert float(err.max()) < 3e-4  # rtol = atol = 1e-5 per step; global error a few tens of that
    # the saved trajectory: 33 levels log-uniform from sigma_max to sigma_min, states on the exact flow
    assert sol.trajectory.shape == (33, 256, 3) and sol.levels.shape == (33,)
    np.testing.assert_allclose(np.asarray(sol.levels)[[0, -1]], [SMAX, SMIN], rtol=1e-5)
    np.testing.assert_allclose(np.diff(np.log(sol.levels)), np.log(SMIN / SMAX) / 32, rtol=1e-4)
    exact_traj = jax.vmap(lambda s: gaussian_flow(SMAX * noise, SMAX, s))(sol.levels)
    scale = 1.0 + jnp.abs(exact_traj)
    assert float(jnp.max(jnp.abs(sol.trajectory - exact_traj) / scale)) < 1e-3
    np.testing.assert_array_equal(sol.trajectory[-1], sol.samples)

    # a looser tolerance is less accurate and costs fewer calls (rtol, atol are traced: no recompile)
    loose = gm.solve(g, ODE(rtol=1e-3, atol=1e-3), jax.random.key(1), (256, 3), noise=noise, save_trajectory=True)
    assert float(jnp.max(jnp.abs(loose.samples - exact))) > 10 * float(jnp.max(jnp.abs(sol.samples - exact)))
    assert int(loose.nfe) < int(sol.nfe)


# one model and call signature shared by several tests, so that they share compiled programs
EIGHT = gm.targets.eight_gaussians()
COUNTING = Probe(EIGHT)  # counts real calls (tests/helpers.py)
EULER_SDE = SDE(steps=20, solver=dfx.Euler())


def run(sampler, seed, model=COUNTING):
    return gm.solve(model, sampler, jax.random.key(seed), (128, 2), save_trajectory=True)


@pytest.mark.parametrize(
    "sampler, per_step, start",
    [
        (ODE(), 6, 1),  # Dopri5: 7 stages, first same as last
        (ODE(solver=dfx.Heun(), rtol=1e-3, atol=1e-3), 2, 0),
        (SDE(), 2, 0),  # ShARK: 2 drift evaluations per step, + the final denoising; per-row steps
        (EULER_SDE, 1, 0),
    ],
)
def test_nfe_formula_matches_counted_calls(sampler, per_step, start):
    run(sampler, 3)  # compile outside the count
    # saving a trajectory (dense interpolation) must not add calls either
    sol, calls = COUNTER.count(lambda: run(sampler, 3))
    final = 1 if isinstance(sampler, SDE) else 0
    nfe = np.asarray(sol.nfe)
    per_row = sampler.per_sample and getattr(sampler, "steps", None) is None
    assert nfe.shape == ((128,) if per_row else ())
    # per-row solves: the vmapped loop calls the model (on the whole batch) until the slowest row is done
    assert int(nfe.max()) == calls
    assert sol.trajectory.shape == (33, 128, 2)  # per-row solves too: (saved, batch, dim)
    assert calls > 0 and np.all((nfe - start - final) % per_step == 0)
    if isinstance(sampler, SDE) and sampler.steps is not None:
        assert calls == sampler.steps * per_step + final


@pytest.mark.parametrize("solver", [dfx.Dopri5(), dfx.Bosh3(), dfx.Heun()], ids=lambda s: type(s).__name__)
def test_nfe_formula_with_rejected_steps(solver):
    """solver_nfe on a solve with many rejected steps, the first ones included (a stiff-ish scalar ODE and
    a far too large first step), set up as ODE and log_prob do it (fsal_state): first-same-as-last
    solvers reuse the first stage after every rejection."""

    def vf(t, y, args):
        jax.debug.callback(COUNTER.tick, t)
        return -50.0 * (y - jnp.cos(t))

    @jax.jit
    def solve():
        ctrl = dfx.PIDController(rtol=1e-6, atol=1e-6)
        term, y0 = dfx.ODETerm(vf), jnp.ones(4)
        state = fsal_state(solver, term, 0.0, y0)
        sol = dfx.diffeqsolve(term, solver, 0.0, 3.0, 1.0, y0, stepsize_controller=ctrl, solver_state=state)
        return sol.stats["num_steps"], sol.stats["num_rejected_steps"]

    solve()
    (num_steps, rejected), calls = COUNTER.count(solve)
    assert int(rejected) > 0
    assert int(solver_nfe(solver, num_steps)) == calls


def _weights(mix, x):
    return np.bincount(np.asarray(mix.component_of(x)), minlength=mix.log_weights.shape[0]) / x.shape[0]


@pytest.mark.parametrize("sampler", [ODE(), SDE()], ids=["ODE", "SDE"])
def test_mixture_weights_and_spread(sampler):
    w = jnp.array([1.0, 2.0, 3.0, 4.0])
    means = jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    mix = gm.targets.GaussianMixture(w, means, 0.25)
    n = 2048 if isinstance(sampler, SDE) else 4096  # the per-row SDE's vmapped loop costs more per row
    x = gm.sample(mix, sampler, jax.random.key(5), (n, 2))
    expected = np.asarray(w / w.sum())
    tol = 5 * np.sqrt(expected * (1 - expected) / n)  # five binomial standard errors
    assert np.all(np.abs(_weights(mix, x) - expected) < tol)
    comp = mix.component_of(x)
    resid = np.asarray(x - mix.means[comp])
    # within-component spread: 0.25 (ODE returns x at sigma_min: sqrt(0.25^2 + 0.002^2), same to 1e-5)
    assert abs(resid.std() - 0.25) < 0.02


@pytest.mark.slow
def test_sde_gaussian_moments():
    g = gm.targets.DiagonalGaussian(MU, S)
    n = 4096
    x = gm.sample(g, SDE(), jax.random.key(7), (n, 3))
    # denoise_final: D(x, sigma_min) has variance S^4 / (S^2 + sigma_min^2), i.e. S^2 to 1e-4
    np.testing.assert_array_less(np.abs(np.asarray(x.mean(0) - MU)), 5 * np.asarray(S) / np.sqrt(n))
    rel = np.abs(np.asarray(x.std(0) / S) - 1.0)
    assert np.all(rel < 5 / np.sqrt(2 * n))


def test_sde_denoise_final_denoises_the_last_state():
    sol = run(EULER_SDE, 2)
    assert int(sol.nfe) == 20 + 1
    # the trajectory ends at x(sigma_min); the samples are its Tweedie denoising D(x, sigma_min)
    np.testing.assert_allclose(sol.levels[-1], SMIN, rtol=1e-5)
    np.testing.assert_allclose(sol.samples, EIGHT(sol.trajectory[-1], SMIN), rtol=1e-5, atol=1e-6)
    assert not np.allclose(sol.samples, sol.trajectory[-1])


@pytest.mark.parametrize("sampler", [ODE(rtol=1e-3, atol=1e-3), EULER_SDE], ids=["ODE", "SDE"])
def test_same_key_same_samples(sampler):
    a, b, c = run(sampler, 11).samples, run(sampler, 11).samples, run(sampler, 12).samples
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# every exported continuous sampler that is not a fixed-step one (those are covered by test_samplers.py);
# a new one is built with its defaults unless listed here with cheaper options
ADAPTIVE = [c for c in exported_samplers(AbstractDenoiserSampler) if not issubclass(c, AbstractStepSampler)]
CHEAP = {SDE: lambda: EULER_SDE}


@pytest.mark.parametrize("cls", ADAPTIVE, ids=[c.__name__ for c in ADAPTIVE])
def test_deterministic_flag(cls):
    """Given the starting noise, the key changes the samples exactly when the sampler says it is not
    ``deterministic`` (the ODE: never; the SDE: through its Brownian motion). The call of
    test_ode_endpoint_matches_closed_form_gaussian, so that the ODE's program is reused."""
    sampler = CHEAP.get(cls, cls)()
    g, noise = gm.targets.DiagonalGaussian(MU, S), jax.random.normal(jax.random.key(0), (256, 3))
    a, b = (gm.solve(g, sampler, jax.random.key(k), (256, 3), noise=noise, save_trajectory=True) for k in (1, 2))
    a, b = a.samples, b.samples
    assert np.all(np.isfinite(np.asarray(a)))
    if sampler.deterministic:
        np.testing.assert_array_equal(a, b)
    else:
        assert not np.allclose(a, b)


def test_new_numbers_do_not_recompile():
    model = Probe(gm.targets.eight_gaussians())  # counts traces (tests/helpers.py)
    gm.sample(model, ODE(rtol=1e-3, atol=1e-3), jax.random.key(0), (16, 2))
    n = COUNTER.traces
    gm.sample(model, ODE(sigma_max=60.0, sigma_min=0.01, rtol=1e-4, atol=1e-4), jax.random.key(1), (16, 2))
    other = Probe(gm.targets.eight_gaussians(radius=3.0))
    gm.sample(other, ODE(rtol=1e-3, atol=1e-3), jax.random.key(2), (16, 2))
    assert COUNTER.traces == n


def test_max_steps_reached_is_a_clear_error():
    g = gm.targets.eight_gaussians()
    with pytest.raises(Exception, match="max_steps=3"):
        jax.block_until_ready(gm.sample(g, ODE(max_steps=3), jax.random.key(0), (8, 2)))


def test_nan_model_is_an_error():
    def bad(x, sigma):
        return x * jnp.nan

    with pytest.raises(Exception, match="finite"):
        jax.block_until_ready(gm.sample(bad, ODE(max_steps=64), jax.random.key(0), (8, 2)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma_min"):
        ODE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="sigma_min"):
        SDE(sigma_min=0.0)
    with pytest.raises(ValueError, match="rtol"):
        ODE(rtol=0.0)
    with pytest.raises(ValueError, match="max_steps"):
        ODE(max_steps=0)
    with pytest.raises(ValueError, match="error estimate"):
        ODE(solver=dfx.Euler())
    with pytest.raises(ValueError, match="error estimate"):
        SDE(solver=dfx.SEA())  # no error estimate: needs steps=N
    with pytest.raises(ValueError, match="unsupported SDE solver"):
        SDE(solver=dfx.Dopri5())
    with pytest.raises(TypeError, match="diffrax solver"):
        ODE(solver="dopri5")
    with pytest.raises(ValueError, match="steps"):
        SDE(steps=0, solver=dfx.Euler())
    for make, match in [
        (lambda: ODE(sigma_max=float("nan")), "sigma_max"),
        (lambda: ODE(atol=float("nan")), "atol"),
        (lambda: SDE(rtol=-1.0), "rtol"),
        (lambda: ODE(num_saved=1), "num_saved"),
        (lambda: SDE(denoise_final=1), "denoise_final"),
        (lambda: ODE(per_sample=1), "per_sample"),
        (lambda: SDE(per_sample="rows"), "per_sample"),
    ]:
        with pytest.raises((gm.errors.ArgumentError, gm.errors.ArgumentTypeError), match=match):
            make()
