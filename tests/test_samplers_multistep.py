"""UniPC, DEIS, IPNDM, IPNDMV and Restart: what the generic tests in test_samplers.py cannot see.

The generic tests (order with exact starting values, keys, NFE, recompilation, trajectories, mixture weights,
start at infinity, NaN options) cover these samplers already. Here: their self-description for non-default
options, bad input, the coefficient formulas against independent transcriptions of the references (the DEIS
coefficients of zju-pi/diff-sampler, the closed-form variable-step Adams-Bashforth weights, diff-sampler's
published iPNDM-v weights), Restart's cost and restart interval, and (slow) UniPC against diffusers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64_mode

import genmodels as gm
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.samplers._deis import vp_constants
from genmodels.samplers._ipndm import published_ipndm_v_weights

S = gm.samplers
SCHEDULE = gm.schedules.karras(8, 0.01, 40.0)


def test_self_description():
    def said(sampler):
        return sampler.order, sampler.deterministic

    assert said(S.UniPC(SCHEDULE)) == (4, True)  # UniP-3 + UniC: one order more
    assert said(S.UniPC(SCHEDULE, order=2, corrector=False)) == (2, True)
    assert said(S.UniPC(SCHEDULE, order=1)) == (2, True)
    assert S.UniPC(SCHEDULE, order=2).predictor_order == 2
    assert isinstance(S.UniPC(SCHEDULE, variant="bh1").variant, S.BH1)
    assert said(S.DEIS(SCHEDULE)) == (3, True) and said(S.DEIS(SCHEDULE, order=4)) == (4, True)
    assert said(S.IPNDMV(SCHEDULE)) == (4, True) and S.IPNDMV(SCHEDULE, order=3).ab_order == 3
    assert said(S.IPNDMV(SCHEDULE, published=True)) == (2, True)  # diff-sampler's order-4 weights
    assert said(S.IPNDMV(SCHEDULE, order=3, published=True)) == (3, True)
    assert said(S.IPNDM(SCHEDULE)) == (2, True)  # fixed weights on a non-uniform grid: see its docstring
    assert said(S.IPNDM(SCHEDULE, order=1)) == (1, True) and S.IPNDM(SCHEDULE).ab_order == 4
    assert said(S.Restart(SCHEDULE)) == (None, False)
    assert said(S.Restart(SCHEDULE, restarts=0)) == (2, True)
    assert said(S.Restart(SCHEDULE, s_noise=0.0)) == (None, True)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: S.UniPC(SCHEDULE, order=4), ArgumentError, "order must be an int in 1..3"),
        (lambda: S.UniPC(SCHEDULE, order=0), ArgumentError, "order"),
        (lambda: S.UniPC(SCHEDULE, variant="bh3"), ArgumentError, "variant"),
        (lambda: S.UniPC(SCHEDULE, corrector=1), ArgumentTypeError, "corrector"),
        (lambda: S.UniPC(SCHEDULE, warm_start="rk4"), ArgumentTypeError, "warm_start"),
        (lambda: S.DEIS(SCHEDULE, order=5), ArgumentError, "order must be an int in 1..4"),
        (lambda: S.DEIS(SCHEDULE, order=2.0), ArgumentError, "order"),
        (lambda: S.DEIS(SCHEDULE, quadrature=1), ArgumentError, "quadrature"),
        (lambda: S.IPNDM(SCHEDULE, order=0), ArgumentError, "order"),
        (lambda: S.IPNDMV(SCHEDULE, order=5), ArgumentError, "order"),
        (lambda: S.IPNDMV(SCHEDULE, published=1), ArgumentTypeError, "published"),
        (lambda: S.DEIS(SCHEDULE[:4], order=4, warm_start=S.RungeKuttaStart()), ArgumentError, "sigmas has 3 steps"),
        (lambda: S.UniPC(SCHEDULE[:3], warm_start=S.RungeKuttaStart()), ArgumentError, "too few for order 3"),
        (lambda: S.Restart(SCHEDULE, t_min=0.5, t_max=0.3), ArgumentError, "t_min < t_max"),
        (lambda: S.Restart(SCHEDULE, t_min=0.0), ArgumentError, "t_min"),
        (lambda: S.Restart(SCHEDULE, restarts=-1), ArgumentError, "restarts"),
        (lambda: S.Restart(SCHEDULE, restart_steps=0), ArgumentError, "restart_steps"),
        (lambda: S.Restart(SCHEDULE, rho=-7.0), ArgumentError, "rho"),
    ],
)
def test_bad_options(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_short_schedules_lower_the_order():
    """With the default warm start, a schedule shorter than the order runs at the orders its history allows
    (one step: Euler for the Adams samplers, DDIM for UniPC) and ends at D on a schedule to 0 (with
    RungeKuttaStart it is refused: test_bad_options)."""
    two = jnp.array([2.0, 0.0])
    target = gm.targets.DiagonalGaussian(jnp.zeros(2), jnp.ones(2))
    noise = jax.random.normal(jax.random.key(0), (8, 2))
    expected = target(2.0 * noise, jnp.asarray(2.0))
    for sampler in (S.UniPC(two), S.DEIS(two, order=4)):
        x = gm.sample(target, sampler, jax.random.key(1), (8, 2), noise=noise)
        np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-6)


# ---- coefficients against independent transcriptions -------------------------------------------------------


def diff_sampler_deis_coefficients(sigmas: np.ndarray, max_order: int, n: int = 10000) -> list[list[float]]:
    """A numpy transcription of diff-sampler's ``get_deis_coeff_list(deis_mode='tab')``: VP times by
    ``edm2t``, the integrand sigma'(tau) written out (their autograd of log alpha), a Riemann sum of ``n``
    points per step."""
    beta_d, beta_min = vp_constants()
    beta_0, beta_1 = beta_min, beta_d + beta_min
    t = (np.sqrt(beta_min**2 + 2 * beta_d * np.log(sigmas**2 + 1)) - beta_min) / beta_d
    out = []
    for i in range(len(t) - 1):
        order = min(i + 1, max_order)
        if order == 1:
            out.append([])
            continue
        taus = np.linspace(t[i], t[i + 1], n)
        alpha = np.exp(-0.5 * taus**2 * (beta_1 - beta_0) - taus * beta_0)
        dlog_alpha = -taus * (beta_1 - beta_0) - beta_0
        integrand = -0.5 * dlog_alpha / np.sqrt(alpha * (1 - alpha))
        prev = t[[i - k for k in range(order)]]
        coeffs = []
        for j in range(order):
            poly = np.prod([(taus - prev[k]) / (prev[j] - prev[k]) for k in range(order) if k != j], axis=0)
            coeffs.append(float(np.sum(integrand * poly) * (t[i + 1] - t[i]) / n))
        out.append(coeffs)
    return out


def our_weights(sampler, sigmas: np.ndarray, i: int, k: int) -> np.ndarray:
    p = min(i + 1, k)
    hist = np.concatenate([sigmas[i::-1][:k], np.ones(k)])[:k]  # newest first; missing entries unused
    return np.asarray(sampler.weights(jnp.asarray(hist), jnp.asarray(sigmas[i + 1]), jnp.asarray(p)))


def test_deis_coefficients_match_diff_sampler():
    """Our Gauss-Legendre integrals in sigma equal diff-sampler's Riemann sums in the VP time to the sums' own
    error (first order in 1/n: 1.4e-5 relative at n = 10^4, 1.4e-6 at 10^5), on an EDM grid ending at 0.002 (a
    step to sigma = 0 gives their integrand a 1/sqrt singularity at the end point, and their sum an inf; the
    integral over sigma has none)."""
    with x64_mode():
        sigmas = np.asarray(gm.schedules.karras(10, 0.002, 80.0, final_zero=False), np.float64)
        sampler = S.DEIS(jnp.asarray(sigmas), order=4)
        errors = {}
        for n in (10**4, 10**5):
            ref = diff_sampler_deis_coefficients(sigmas, 4, n)
            errors[n] = max(
                np.max(np.abs(our_weights(sampler, sigmas, i, 4)[: len(c)] - c) / np.max(np.abs(c)))
                for i, c in enumerate(ref)
                if c
            )
    assert errors[10**4] < 1e-4 and errors[10**5] < errors[10**4] / 5, errors


def test_ipndmv_weights():
    """IPNDMV's default weights are the exact variable-step Adams-Bashforth ones (closed-form integrals of
    the Newton basis); diff-sampler's published weights agree with them at order 2, and at every order on a
    uniform grid (the fixed AB weights), but not at orders 3 and 4 on a non-uniform grid."""
    with x64_mode():
        sig = np.array([7.0, 5.5, 4.0, 3.0, 2.2])  # sigma_{i-3}, ..., sigma_i, then sigma_{i+1} = 1.5
        hist, nxt = jnp.asarray(sig[::-1][:4]), 1.5
        sampler = S.IPNDMV(jnp.asarray([8.0, 0.0]), order=4)
        # Newton form: int_0^h u du, int u (u + h1) du, int u (u + h1)(u + h1 + h2) du over u in [0, h]
        h, h1, h2, h3 = nxt - sig[4], sig[4] - sig[3], sig[3] - sig[2], sig[2] - sig[1]
        d = np.array(sig[::-1][:4])
        newton = [
            np.array([h, 0, 0, 0]),
            h**2 / 2 * np.array([1, -1, 0, 0]) / h1,
        ]
        dd2 = (np.array([1, -1, 0, 0]) / h1 - np.array([0, 1, -1, 0]) / h2) / (h1 + h2)
        newton.append((h**3 / 3 + h1 * h**2 / 2) * dd2)
        dd2b = (np.array([0, 1, -1, 0]) / h2 - np.array([0, 0, 1, -1]) / h3) / (h2 + h3)
        i3 = h**4 / 4 + (2 * h1 + h2) * h**3 / 3 + h1 * (h1 + h2) * h**2 / 2
        newton.append(i3 * (dd2 - dd2b) / (h1 + h2 + h3))
        assert d[0] == sig[4]
        for p in (1, 2, 3, 4):
            exact = np.sum(newton[:p], axis=0)
            ours = np.asarray(sampler.weights(hist, jnp.asarray(nxt), jnp.asarray(p)))
            np.testing.assert_allclose(ours, exact, rtol=1e-12, atol=1e-12)
            published = np.asarray(published_ipndm_v_weights(hist, jnp.asarray(nxt), jnp.asarray(p)))
            assert np.allclose(published, exact, rtol=1e-12) == (p <= 2), (p, published, exact)
        # on a uniform grid (h = -1): the AB weights, except diff-sampler's order 4 (first weight 57/24)
        uniform, nxt = jnp.asarray([4.0, 5.0, 6.0, 7.0]), jnp.asarray(3.0)
        ab3, ab4 = -np.array([23.0, -16.0, 5.0, 0.0]) / 12, -np.array([55.0, -59.0, 37.0, -9.0]) / 24
        np.testing.assert_allclose(sampler.weights(uniform, nxt, jnp.asarray(4)), ab4, rtol=1e-12)
        np.testing.assert_allclose(published_ipndm_v_weights(uniform, nxt, jnp.asarray(3)), ab3, rtol=1e-12)
        pub4 = np.asarray(published_ipndm_v_weights(uniform, nxt, jnp.asarray(4)))
        np.testing.assert_allclose(pub4, -np.array([57.0, -65.0, 43.0, -11.0]) / 24, rtol=1e-12)


@pytest.mark.slow
def test_ipndm_order_on_a_uniform_grid(x64):
    """Fixed AB weights lose their order only on a non-uniform grid: on a grid uniform in sigma (with exact
    starting values) IPNDM converges with order 4 (stated order 2 holds on Karras grids, test_samplers)."""
    errors = []
    for n in (32, 64):
        sig = jnp.linspace(2.0, 1.0, n + 1)
        errors.append(_gaussian_end_error(S.IPNDM(sig, warm_start=S.RungeKuttaStart()), sig))
    assert abs(np.log2(errors[0] / errors[1]) - 4) < 0.3, errors


# ---- Restart -------------------------------------------------------------------------------------------------


def test_restart_cost_and_interval():
    """On EDM's 18-step grid the reference's CIFAR-10 configuration costs 35 + 2 x 2 x 2 = 43 model calls;
    the restart interval starts at the schedule entry nearest t_min."""
    sig = gm.schedules.karras(18, 0.002, 80.0)
    sampler = S.Restart(sig)
    j = int(sampler.restart_index())
    assert j == int(np.argmin(np.abs(np.asarray(sig) - 0.14)))
    per_step = np.asarray(jax.vmap(sampler.step_nfe)(jnp.arange(18)))
    assert per_step.sum() == 43 and per_step[j - 1] == 2 + 8
    total = lambda sampler: int(jnp.sum(jax.vmap(sampler.step_nfe)(jnp.arange(18))))  # noqa: E731
    assert total(S.Restart(sig, t_min=27.0, t_max=28.0)) == 35  # the nearest entry, 28.4, is above t_max


# ---- peers (slow) --------------------------------------------------------------------------------------------


def _diffusers_unipc(sigmas: np.ndarray, z: np.ndarray, target, order, variant, lower_order_final):
    """diffusers' UniPCMultistepScheduler (x0 prediction, no thresholding) on our sigmas, in its VP scaling
    (x_vp = x / sqrt(1 + sigma^2)), driven by the exact denoiser; returns the EDM-scaled end point."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.UniPCMultistepScheduler(
        solver_order=order, prediction_type="sample", solver_type=variant, lower_order_final=lower_order_final
    )
    n = len(sigmas) - 1
    sched.set_timesteps(n)
    sched.sigmas = torch.tensor(sigmas, dtype=torch.float64)
    x = torch.tensor(z * sigmas[0] / np.sqrt(1 + sigmas[0] ** 2), dtype=torch.float64)
    for i, t in enumerate(sched.timesteps):
        scale = np.sqrt(1 + sigmas[i] ** 2)
        denoised = np.asarray(target(jnp.asarray(x.numpy() * scale), jnp.asarray(sigmas[i])))
        x = sched.step(torch.tensor(denoised), t, x).prev_sample
    return x.numpy() * np.sqrt(1 + sigmas[-1] ** 2)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_matches_diffusers(variant, order):
    """Same sigmas, same noise, exact Gaussian-mixture denoiser: genmodels' UniPC and diffusers' agree to
    float64 rounding, on 10 steps to 0 (both lower the final orders; for bh1, to 0.002: diffusers' bh1 step to
    sigma = 0 computes B(h) x 0 = -inf x 0, NaN) and on 20 steps to 0.05 (diffusers
    with lower_order_final=False: its rule lowers the last steps on any schedule, ours below 15 steps)."""
    with x64_mode():
        means = jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
        target = gm.targets.GaussianMixture(jnp.array([0.5, 0.3, 0.2]), means, jnp.array([0.3, 0.5, 0.4]))
        z = np.asarray(jax.random.normal(jax.random.key(3), (16, 2), jnp.float64))
        short = gm.schedules.karras(10, 0.002, 80.0, final_zero=variant == "bh2")
        for sig, lof in ((short, True), (gm.schedules.karras(20, 0.05, 10.0, final_zero=False), False)):
            sig = np.asarray(sig, np.float64)
            ref = _diffusers_unipc(sig, z, target, order, variant, lof)
            ours = gm.sample(
                target,
                S.UniPC(jnp.asarray(sig), order=order, variant=variant),
                jax.random.key(0),
                z.shape,
                noise=jnp.asarray(z),
            )
            np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-10, atol=1e-10)


def _gaussian_end_error(sampler, sig) -> float:
    m, s = jnp.array([0.5, -1.0]), jnp.array([1.0, 0.3])
    z = jax.random.normal(jax.random.key(0), (16, 2), jnp.float64)
    x = gm.sample(gm.targets.DiagonalGaussian(m, s), sampler, jax.random.key(1), (16, 2), noise=z)
    exact = m + (sig[0] * z - m) * jnp.sqrt(s**2 + sig[-1] ** 2) / jnp.sqrt(s**2 + sig[0] ** 2)
    return float(jnp.max(jnp.abs(x - exact)))


@pytest.mark.slow
@pytest.mark.parametrize("order, steps", [(3, (64, 256)), (4, (512, 2048))])
def test_ipndmv_published_orders(x64, order, steps):
    """diff-sampler's iPNDM-v weights converge with the orders ``IPNDMV(published=True)`` states: 3 for its
    order-3 weights, 2 for its order-4 ones (asymptotically: at 32-128 steps the slope is still below 1)."""
    errors = []
    for n in steps:
        sig = gm.schedules.karras(n, 0.05, 10.0, final_zero=False)
        sampler = S.IPNDMV(sig, order=order, published=True, warm_start=S.RungeKuttaStart())
        errors.append(_gaussian_end_error(sampler, sig))
    measured = np.log(errors[0] / errors[1]) / np.log(steps[1] / steps[0])
    assert abs(measured - sampler.order) < 0.3, (measured, errors)


@pytest.mark.slow
def test_gradients_with_respect_to_the_schedule_are_finite():
    """Masked coefficients (missing history, unused corrector) never divide by zero, so the samples can be
    differentiated with respect to the schedule (as a fitted schedule needs), also with an entry exactly 1."""
    target = gm.targets.DiagonalGaussian(jnp.zeros(2), jnp.ones(2))
    z = jax.random.normal(jax.random.key(0), (8, 2))
    sig = jnp.array([4.0, 2.0, 1.0, 0.5, 0.2, 0.0])
    for make in (S.UniPC, lambda s: S.DEIS(s, order=4), S.IPNDMV, lambda s: S.IPNDMV(s, published=True), S.IPNDM):
        grad = jax.grad(
            lambda s, make=make: jnp.sum(gm.sample(target, make(s), jax.random.key(1), (8, 2), noise=z) ** 2)
        )(sig)
        assert np.all(np.isfinite(np.asarray(grad))), (make, grad)
