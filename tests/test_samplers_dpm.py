"""DPM-Solver++ family and LMS: identities between options, exact LMS coefficients, bad input, the measured
orders of both third-order coefficient sets (slow), and agreement with k-diffusion on the same sigmas and the
same step noise (slow; skipped without torch and k-diffusion).

The generic sampler tests (``tests/test_samplers.py``) cover these samplers' stated orders with exact starting
values, NFE, keys, trajectories and options; here are the checks specific to these methods."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genmodels as gm
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.samplers._lms import lagrange_weights

S = gm.samplers
SCHEDULE = gm.schedules.karras(12, 0.01, 40.0)  # 13 entries, ends in 0


def mixture(dtype=jnp.float32):
    """Three well-separated components with unequal weights and spreads, in ``dtype``."""
    return gm.targets.GaussianMixture(
        jnp.array([0.5, 0.3, 0.2], dtype),
        jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype),
        jnp.array([0.3, 0.5, 0.4], dtype),
    )


MIX = mixture()
NOISE = jax.random.normal(jax.random.key(3), (32, 2))


def sample(sampler, model=MIX, noise=NOISE, key=jax.random.key(0)):
    return np.asarray(gm.sample(model, sampler, key, noise.shape, noise=noise))


def test_identities_between_options():
    """The 3M sampler with the published coefficients and no lower-order final steps is k-diffusion's 3M SDE at
    eta = 0, for either coefficient set; the 2M SDE at eta = 0 with the midpoint type is DPM-Solver++(2M)."""
    for coefficients in (S.PublishedCoefficients(), S.CorrectedCoefficients()):
        a = sample(S.DPMSolverPP3M(SCHEDULE, coefficients=coefficients, lower_order_final=False))
        b = sample(S.DPMSolverPP3MSDE(SCHEDULE, eta=0.0, coefficients=coefficients))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    a = sample(S.DPMSolverPP2MSDE(SCHEDULE, eta=0.0))
    np.testing.assert_allclose(a, sample(S.DPMSolverPP2M(SCHEDULE)), rtol=1e-5, atol=1e-5)


def test_self_description():
    said = lambda s: (s.order, s.deterministic)  # noqa: E731
    assert said(S.DPMSolverPP3M(SCHEDULE)) == (3, True)
    assert said(S.DPMSolverPP3M(SCHEDULE, coefficients=S.PublishedCoefficients())) == (2, True)
    assert said(S.DPMSolverPP3MSDE(SCHEDULE, eta=0.0, coefficients=S.CorrectedCoefficients())) == (3, True)
    assert said(S.DPMSolverPP3MSDE(SCHEDULE, eta=0.0)) == (2, True)
    assert said(S.DPMSolverPP2MSDE(SCHEDULE)) == (None, False)
    assert said(S.DPMSolverPP2MSDE(SCHEDULE, eta=0.0, solver_type=S.HeunType())) == (2, True)
    assert said(S.DPMSolverPP2MSDE(SCHEDULE, s_noise=0.0)) == (None, True)
    assert said(S.DPMSolverPP2S(SCHEDULE)) == (2, True)
    assert said(S.DPMSolverPP2S(SCHEDULE, eta=1.0)) == (None, False)
    assert said(S.LMS(SCHEDULE)) == (4, True) and said(S.LMS(SCHEDULE, order=2)) == (2, True)
    assert S.DPMSolverPP3M(SCHEDULE).lower_order_final and not S.LMS(SCHEDULE).lower_order_final


def test_2s_calls():
    """2S makes two calls per step and one for the step to 0; with an eta so large that sigma_down = 0 (the
    ancestral noise takes all of sigma'), every step is one call, x' = D."""
    assert [int(S.DPMSolverPP2S(SCHEDULE).step_nfe(jnp.asarray(i))) for i in range(12)] == [2] * 11 + [1]
    assert all(int(S.DPMSolverPP2S(SCHEDULE, eta=1e4).step_nfe(jnp.asarray(i))) == 1 for i in range(12))


def test_lms_weights_are_exact(x64):
    """The Lagrange integrals equal the closed-form integrals of the interpolating polynomials (numpy
    polyfit/polyint), for 1 to 4 nodes on a Karras grid, and integrate the nodes' polynomials exactly."""
    sig = np.asarray(gm.schedules.karras(10, 0.05, 10.0, final_zero=False), np.float64)
    for p in range(1, 5):
        nodes, a, b = sig[4 - p + 1 : 5][::-1], sig[4], sig[5]
        got = np.asarray(lagrange_weights(jnp.asarray(nodes), a, b))
        for j in range(p):
            basis = np.polyint(np.polyfit(nodes, np.eye(p)[j], p - 1))
            np.testing.assert_allclose(got[j], np.polyval(basis, b) - np.polyval(basis, a), rtol=1e-10, atol=1e-13)
        # sum_j c_j t_j^k = int t^k for k < p
        for k in range(p):
            np.testing.assert_allclose(got @ nodes**k, (b ** (k + 1) - a ** (k + 1)) / (k + 1), rtol=1e-11)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: S.LMS(SCHEDULE, order=0), ArgumentError, "order must be an int from 1|order must be an int >= 1"),
        (lambda: S.LMS(SCHEDULE, order=5), ArgumentError, "order must be an int from 1 to 4"),
        (lambda: S.LMS(SCHEDULE, order=2.5), ArgumentError, "order"),
        (lambda: S.LMS(SCHEDULE, warm_start="rk"), ArgumentTypeError, "warm_start"),
        (lambda: S.LMS(SCHEDULE, lower_order_final=1), ArgumentTypeError, "lower_order_final"),
        (lambda: S.DPMSolverPP3M(SCHEDULE, coefficients="published"), ArgumentTypeError, "coefficients"),
        (lambda: S.DPMSolverPP3M(SCHEDULE, warm_start=None), ArgumentTypeError, "warm_start"),
        (lambda: S.DPMSolverPP3M(SCHEDULE, lower_order_final="yes"), ArgumentTypeError, "lower_order_final"),
        (lambda: S.DPMSolverPP3MSDE(SCHEDULE, coefficients=S.HeunType()), ArgumentTypeError, "coefficients"),
        (lambda: S.DPMSolverPP2MSDE(SCHEDULE, solver_type="heun"), ArgumentTypeError, "solver_type"),
        (lambda: S.DPMSolverPP2MSDE(SCHEDULE, eta=-1.0), ArgumentError, "eta"),
        (lambda: S.DPMSolverPP2MSDE(SCHEDULE, s_noise=float("inf")), ArgumentError, "s_noise"),
        (lambda: S.DPMSolverPP2S(SCHEDULE, eta=-0.1), ArgumentError, "eta"),
        (lambda: S.DPMSolverPP2S(SCHEDULE, s_noise=-1.0), ArgumentError, "s_noise"),
    ],
)
def test_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ---- measured orders (slow): the numbers of docs/samplers.md --------------------------------------------------


def gaussian_errors(make, steps, sigma_min=0.05, sigma_max=10.0):
    """Max end-point error at sigma_min against the exact probability-flow ODE solution for N(m, diag(s^2))
    (float64; the generic order test's setting), for each step count."""
    m, s = jnp.array([0.5, -1.0]), jnp.array([1.0, 0.3])
    z = jax.random.normal(jax.random.key(0), (16, 2), jnp.float64)
    errors = []
    for n in steps:
        sig = gm.schedules.karras(n, sigma_min, sigma_max, final_zero=False)
        x = gm.sample(gm.targets.DiagonalGaussian(m, s), make(sig), jax.random.key(1), (16, 2), noise=z)
        exact = m + (sig[0] * z - m) * jnp.sqrt(s**2 + sig[-1] ** 2) / jnp.sqrt(s**2 + sig[0] ** 2)
        errors.append(float(jnp.max(jnp.abs(x - exact))))
    return np.array(errors)


def slope(errors, steps):
    return -np.polyfit(np.log(steps), np.log(errors), 1)[0]


RK, FINE, WARM = S.RungeKuttaStart(), (64, 128, 256), (32, 45, 64)
ORDER_CASES = {  # name: (factory, stated order with exact starting values)
    "3M corrected": (lambda sig, **kw: S.DPMSolverPP3M(sig, **kw), 3),
    "3M published": (lambda sig, **kw: S.DPMSolverPP3M(sig, coefficients=S.PublishedCoefficients(), **kw), 2),
    "LMS(4)": (lambda sig, **kw: S.LMS(sig, **kw), 4),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ORDER_CASES))
def test_measured_orders(x64, name):
    """With exact (RK4) starting values on N = 64, 128, 256 the errors fall monotonically with the stated order
    (the published 3M coefficients: 2, not 3); with the default lower-order warm start at sigma_max = 80
    (sigma_min = 0.002) on N = 32, 45, 64 the measured slope is printed for the docs."""
    make, stated = ORDER_CASES[name]
    exact_start = gaussian_errors(lambda sig: make(sig, warm_start=RK), FINE)
    warm = gaussian_errors(make, WARM, sigma_min=0.002, sigma_max=80.0)
    print(f"\n{name}: RK start {FINE} {exact_start} slope {slope(exact_start, FINE):.2f}; ")
    print(f"{name}: default start, sigma_max 80, {WARM} {warm} slope {slope(warm, WARM):.2f}")
    assert np.all(np.diff(exact_start) < 0) and abs(slope(exact_start, FINE) - stated) < 0.3


# ---- agreement with k-diffusion (slow) ---------------------------------------------------------------------


def load_kdiffusion():
    """k_diffusion/sampling.py on its own (the package's __init__ imports image libraries), ``utils`` stubbed."""
    pytest.importorskip("torch")
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        pytest.skip("k-diffusion is not installed")
    root = pathlib.Path(spec.submodule_search_locations[0])
    pkg, utils = types.ModuleType("_kd_test"), types.ModuleType("_kd_test.utils")
    pkg.__path__ = [str(root)]
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    pkg.utils = utils
    sys.modules.update({"_kd_test": pkg, "_kd_test.utils": utils})
    mspec = importlib.util.spec_from_file_location("_kd_test.sampling", root / "sampling.py")
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    return module


def torch_mixture(target):
    """The exact denoiser of ``target`` (isotropic components) in torch float64."""
    import torch

    logw = torch.tensor(np.asarray(target.log_weights), dtype=torch.float64)
    mu = torch.tensor(np.asarray(target.means), dtype=torch.float64)
    var0 = torch.tensor(np.asarray(target.stds), dtype=torch.float64) ** 2  # (K, d)

    def denoise(x, sigma):
        var = var0 + sigma.reshape(-1)[0] ** 2
        diff = x[:, None, :] - mu
        lp = logw - 0.5 * (diff**2 / var + torch.log(2 * np.pi * var)).sum(-1)
        r = torch.softmax(lp, dim=-1)[..., None]
        return (r * (mu + var0 / var * diff)).sum(-2)

    return denoise


def step_noises(key, n, shape):
    """The standard normals step i of a genmodels step sampler draws (``run`` splits the key; step i folds in i)."""
    _, key_run = jax.random.split(key)
    return [np.asarray(jax.random.normal(jax.random.fold_in(key_run, i), shape, jnp.float64)) for i in range(n)]


PEER_CASES = {  # name: (genmodels sampler on sigmas, k-diffusion function name, its keyword arguments)
    "2M SDE eta 0": (lambda s: S.DPMSolverPP2MSDE(s, eta=0.0), "sample_dpmpp_2m_sde", {"eta": 0.0}),
    "2M SDE eta 1": (lambda s: S.DPMSolverPP2MSDE(s), "sample_dpmpp_2m_sde", {"eta": 1.0}),
    "2M SDE heun eta 0.5": (
        lambda s: S.DPMSolverPP2MSDE(s, eta=0.5, solver_type=S.HeunType()),
        "sample_dpmpp_2m_sde",
        {"eta": 0.5, "solver_type": "heun"},
    ),
    "3M SDE eta 0": (lambda s: S.DPMSolverPP3MSDE(s, eta=0.0), "sample_dpmpp_3m_sde", {"eta": 0.0}),
    "3M SDE eta 1": (lambda s: S.DPMSolverPP3MSDE(s), "sample_dpmpp_3m_sde", {"eta": 1.0}),
    "2S": (lambda s: S.DPMSolverPP2S(s), "sample_dpmpp_2s_ancestral", {"eta": 0.0}),
    "2S ancestral": (lambda s: S.DPMSolverPP2S(s, eta=1.0), "sample_dpmpp_2s_ancestral", {"eta": 1.0}),
    "LMS": (lambda s: S.LMS(s), "sample_lms", {}),
    "LMS(2)": (lambda s: S.LMS(s, order=2), "sample_lms", {"order": 2}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PEER_CASES))
def test_agrees_with_k_diffusion(x64, name):
    """Same sigmas (karras(20), ending in 0), same starting noise and, for eta > 0, the same step noise (fed to
    k-diffusion's ``noise_sampler``): float64 samples agree to 1e-12 (measured: 2e-15 to 3e-14; LMS too, as
    k-diffusion's scipy quad integrates the Lagrange cubics exactly up to rounding)."""
    import torch

    kd = load_kdiffusion()
    make, function, kwargs = PEER_CASES[name]
    sig = gm.schedules.karras(20, 0.01, 40.0).astype(jnp.float64)
    noise = jax.random.normal(jax.random.key(4), (64, 2), jnp.float64)
    key = jax.random.key(7)
    mix = mixture(jnp.float64)
    ours = sample(make(sig), model=mix, noise=noise, key=key)
    tsig = torch.tensor(np.asarray(sig))
    if kwargs.get("eta", 0.0) > 0:  # k-diffusion asks for step i's noise with (sigma_i, sigma_{i+1})
        noises = step_noises(key, len(sig) - 1, noise.shape)
        index = {float(s): i for i, s in enumerate(np.asarray(sig))}
        kwargs = {**kwargs, "noise_sampler": lambda s, s_next: torch.tensor(noises[index[float(s)]])}
    x = torch.tensor(np.asarray(noise)) * tsig[0]
    theirs = getattr(kd, function)(torch_mixture(mix), x, tsig, disable=True, **kwargs).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [S.DPMSolverPP3M, S.LMS], ids=["DPMSolverPP3M", "LMS"])
def test_runge_kutta_start_counts_its_calls(cls):
    """With ``RungeKuttaStart`` the warm steps' extra calls are counted: ``nfe`` equals the real calls, on a
    schedule ending in 0 and on one starting at inf (where the first sampler step is step 1)."""
    from helpers import COUNTER, Probe
    from test_samplers import FLOW_MODEL

    for model, sig in [(MIX, SCHEDULE), (FLOW_MODEL, gm.schedules.uniform_t(gm.paths.Linear(), 12))]:
        sampler = cls(sig, warm_start=S.RungeKuttaStart(substeps=2))
        solve = lambda: gm.solve(Probe(model), sampler, jax.random.key(0), NOISE.shape, noise=NOISE)  # noqa: B023, E731
        sol, calls = COUNTER.count(solve)
        assert int(sol.nfe) == calls and np.all(np.isfinite(np.asarray(sol.samples)))
        warm = 2 if cls is S.DPMSolverPP3M else 3
        assert calls == 12 + warm * (4 * 2 - 1)  # 12 sampler calls (or 1 at inf + 11), 7 more per warm step
