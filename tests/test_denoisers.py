"""Denoiser adapters, conversions and EDM preconditioning against a mixture's analytic denoiser."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genmodels as gm
from genmodels import denoisers as dn
from genmodels.paths import EDM, VE, VP, Cosine, Linear, SubVP

MIX = gm.targets.GaussianMixture(
    jnp.array([0.5, 0.3, 0.2]), jnp.array([[-2.0, 0.0], [2.0, 0.5], [0.0, 3.0]]), jnp.array([0.3, 0.5, 0.4])
)
X0 = MIX.sample(jax.random.key(0), 16)
EPS = jax.random.normal(jax.random.key(1), (16, 2))
PATHS = [VE(), VP(), SubVP(), EDM(), Linear(), Cosine()]
IDS = [type(p).__name__ for p in PATHS]


def col(v, x):
    """A scalar or per-row value broadcast against x (batch, dim)."""
    v = jnp.asarray(v)
    return v if v.ndim == 0 else v[:, None]


# ---- the exact path-native models of MIX, written in x_t coordinates ----------------------------------------
# With x_t = a x0 + b eps (a = s, b = s sigma) and x_hat = x_t / a: D = MIX(x_hat, sigma),
# score_t(x_t) = score_sigma(x_hat) / a, eps = (x_hat - D) / sigma, v = a eps - b D, u = a' D + b' eps.


def exact_models(path):
    def parts(x_t, t):
        a, b = col(path.alpha(t), x_t), col(path.noise_std(t), x_t)
        sigma = path.sigma(t)
        x_hat = x_t / a
        d = MIX(x_hat, sigma)
        eps = (x_hat - d) / col(sigma, x_t)
        return a, b, sigma, x_hat, d, eps

    def score(x_t, t):
        a, _, sigma, x_hat, _, _ = parts(x_t, t)
        return MIX.score(x_hat, sigma) / a

    def eps_fn(x_t, t):
        return parts(x_t, t)[-1]

    def v_fn(x_t, t):
        a, b, _, _, d, eps = parts(x_t, t)
        return a * eps - b * d

    def velocity(x_t, t):
        _, _, _, _, d, eps = parts(x_t, t)
        da, db = col(path.scale_deriv(t), x_t), col(path.noise_std_deriv(t), x_t)
        return da * d + db * eps

    return {"score": score, "eps": eps_fn, "v": v_fn, "velocity": velocity}


ADAPTERS = {"score": dn.from_score, "eps": dn.from_eps, "v": dn.from_v, "velocity": dn.from_velocity}


def sigmas_for(path):
    """Noise levels inside the path's range, from 0.05 up to sigma(t) at 90% of the time range."""
    hi = float(path.sigma(path.t_min + 0.9 * (path.t_max - path.t_min)))
    lo = max(0.05, float(path.sigma(path.t_min)) * 1.01)
    return np.geomspace(lo, min(hi, 40.0), 5)


@pytest.mark.parametrize("kind", list(ADAPTERS))
@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_adapters_round_trip_to_the_analytic_denoiser(path, kind):
    fn = exact_models(path)[kind]
    den = ADAPTERS[kind](fn, path)
    for sigma in sigmas_for(path):
        x = X0 + sigma * EPS
        np.testing.assert_allclose(den(x, sigma), MIX(x, sigma), rtol=2e-3, atol=2e-3 * max(1.0, sigma / 10))
    # per-row noise levels
    sig = jnp.asarray(np.resize(sigmas_for(path), 16), jnp.float32)
    x = X0 + sig[:, None] * EPS
    np.testing.assert_allclose(den(x, sig), MIX(x, sig), rtol=2e-3, atol=5e-3)


@pytest.mark.parametrize("path", [Linear(), Cosine()], ids=["Linear", "Cosine"])
def test_limits_at_infinity(path):
    """At t = 1 (sigma = inf): x_t = eps, D = E[x0]; so v = -E[x0] and u = a'(1) E[x0] + b'(1) eps."""
    t1 = jnp.asarray(1.0)
    mean = MIX.mean

    def v_inf(x_t, t):
        return jnp.broadcast_to(-mean, x_t.shape)

    def u_inf(x_t, t):
        return path.scale_deriv(t) * mean + path.noise_std_deriv(t) * x_t

    np.testing.assert_allclose(dn.from_v(v_inf, path).at_infinity(EPS), MIX.at_infinity(EPS), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        dn.from_velocity(u_inf, path).at_infinity(EPS), MIX.at_infinity(EPS), rtol=1e-5, atol=1e-6
    )
    assert float(path.noise_std(t1)) == 1.0


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_conversions_from_denoised(path):
    models = exact_models(path)
    for sigma in sigmas_for(path):
        x = X0 + sigma * EPS
        d = MIX(x, sigma)
        t = path.inverse_sigma(sigma)
        x_t = path.scale(t) * x
        np.testing.assert_allclose(dn.score_from_denoised(x, sigma, d), MIX.score(x, sigma), rtol=1e-4, atol=1e-4)
        eps = dn.eps_from_denoised(x, sigma, d)
        np.testing.assert_allclose(d + sigma * eps, x, rtol=1e-5, atol=1e-4)  # inverse of from_eps on EDM
        np.testing.assert_allclose(dn.v_from_denoised(x, sigma, d, path), models["v"](x_t, t), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(
            dn.velocity_from_denoised(x, sigma, d, path), models["velocity"](x_t, t), rtol=1e-3, atol=1e-3
        )


def test_edm_default_path_is_the_usual_formula():
    """from_score on the default EDM path is D = x + sigma^2 score(x, sigma)."""
    sigma = 0.7
    x = X0 + sigma * EPS
    expected = x + sigma**2 * MIX.score(x, sigma)
    np.testing.assert_allclose(dn.from_score(MIX.score)(x, sigma), expected, rtol=1e-5, atol=1e-5)


# ---- EDM preconditioning (Karras et al. 2022, Table 1) ----------------------------------------------------

SIGMAS = jnp.array([0.002, 0.05, 0.5, 1.0, 7.0, 80.0])


@pytest.mark.parametrize("sd", [0.5, 1.3])
def test_edm_precond_coefficients_and_identities(sd):
    c_skip, c_out, c_in, c_noise = dn.EDMPrecond(sigma_data=sd).coefficients(SIGMAS)
    s = np.asarray(SIGMAS, np.float64)
    np.testing.assert_allclose(c_skip, sd**2 / (s**2 + sd**2), rtol=1e-5)
    np.testing.assert_allclose(c_out, s * sd / np.sqrt(s**2 + sd**2), rtol=1e-5)
    np.testing.assert_allclose(c_in, 1 / np.sqrt(s**2 + sd**2), rtol=1e-5)
    np.testing.assert_allclose(c_noise, np.log(s) / 4, rtol=1e-5)
    # unit-variance training target: for y with variance sd^2, F = (y - c_skip (y + s n)) / c_out has
    # variance ((1 - c_skip)^2 sd^2 + c_skip^2 s^2) / c_out^2 = 1, and the input c_in (y + s n) too
    np.testing.assert_allclose((1 - c_skip) ** 2 * sd**2 + c_skip**2 * s**2, c_out**2, rtol=1e-4)
    np.testing.assert_allclose(c_in**2 * (sd**2 + s**2), 1.0, rtol=1e-5)
    # EDM's loss weight lambda = (s^2 + sd^2) / (s sd)^2 is 1 / c_out^2
    np.testing.assert_allclose((s**2 + sd**2) / (s * sd) ** 2, 1 / np.asarray(c_out, np.float64) ** 2, rtol=1e-4)


def test_vp_ve_precond_coefficients():
    s = np.asarray(SIGMAS, np.float64)
    c_skip, c_out, c_in, c_noise = dn.VPPrecond().coefficients(SIGMAS)
    np.testing.assert_allclose(c_skip, 1.0)
    np.testing.assert_allclose(c_out, -s, rtol=1e-6)
    np.testing.assert_allclose(c_in, 1 / np.sqrt(s**2 + 1), rtol=1e-6)
    t = (np.sqrt(0.1**2 + 2 * 19.9 * np.log1p(s**2)) - 0.1) / 19.9
    np.testing.assert_allclose(c_noise, 999 * t, rtol=1e-4)
    # the same t as the VP path's inverse_sigma with beta in [0.1, 20]
    np.testing.assert_allclose(c_noise, 999 * VP().inverse_sigma(SIGMAS), rtol=1e-4)
    c_skip, c_out, c_in, c_noise = dn.VEPrecond().coefficients(SIGMAS)
    np.testing.assert_allclose(c_skip, 1.0)
    np.testing.assert_allclose(c_out, s, rtol=1e-6)
    np.testing.assert_allclose(c_in, 1.0)
    np.testing.assert_allclose(c_noise, np.log(s / 2), rtol=1e-5, atol=1e-6)


def test_iddpm_sigmas_and_precond():
    m = 1000
    u = dn.iddpm_sigmas(m)
    assert u.shape == (m + 1,) and u[m] == 0.0
    assert np.all(np.diff(u) < 0)  # u_0 > u_1 > ... > u_M = 0
    # the recurrence: (u_{j-1}^2 + 1) max(abar(j-1) / abar(j), C1) = u_j^2 + 1
    abar = np.sin(0.5 * np.pi * np.arange(m + 1) / m / 1.008) ** 2
    ratio = np.maximum(abar[:-1] / np.maximum(abar[1:], 1e-300), 0.001)
    np.testing.assert_allclose((u[:-1] ** 2 + 1) * ratio, u[1:] ** 2 + 1, rtol=1e-8)
    pre = dn.IDDPMPrecond()
    j = jnp.array([0, 10, 500, 999])
    c_skip, c_out, c_in, c_noise = pre.coefficients(jnp.asarray(u, jnp.float32)[j])
    np.testing.assert_array_equal(c_noise, m - 1 - np.asarray(j))
    np.testing.assert_allclose(c_out, -u[np.asarray(j)], rtol=1e-5)
    np.testing.assert_allclose(c_in, 1 / np.sqrt(u[np.asarray(j)] ** 2 + 1), rtol=1e-5)


@pytest.mark.parametrize("pre", [dn.EDMPrecond(), dn.VPPrecond(), dn.VEPrecond(), dn.IDDPMPrecond()], ids=str)
def test_preconditioned_reproduces_the_formula(pre):
    def net(z, c_noise):
        return jnp.tanh(z) * (1.0 + 0.1 * c_noise[:, None]) + 0.3

    sig = jnp.linspace(0.1, 5.0, 16)
    x = X0 + sig[:, None] * EPS
    c_skip, c_out, c_in, c_noise = pre.coefficients(sig)
    expected = c_skip[:, None] * x + c_out[:, None] * net(c_in[:, None] * x, c_noise)
    np.testing.assert_allclose(dn.precondition(net, pre)(x, sig), expected, rtol=1e-5, atol=1e-6)
    # a scalar sigma is broadcast to every row
    c_skip, c_out, c_in, c_noise = pre.coefficients(jnp.full((16,), 0.8))
    expected = c_skip[:, None] * x + c_out[:, None] * net(c_in[:, None] * x, c_noise)
    np.testing.assert_allclose(dn.Preconditioned(net, pre)(x, 0.8), expected, rtol=1e-5, atol=1e-6)


def test_precondition_default_is_edm():
    assert isinstance(dn.precondition(lambda z, c: z).precond, dn.EDMPrecond)
    # F = 0 leaves the skip connection: D = c_skip x = sd^2 / (sigma^2 + sd^2) x
    den = dn.precondition(lambda z, c: jnp.zeros_like(z))
    np.testing.assert_allclose(den(X0, 1.0), 0.25 / 1.25 * X0, rtol=1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: dn.EDMPrecond(float("nan")), "sigma_data"),
        (lambda: dn.EDMPrecond(sigma_data=-0.5), "sigma_data"),
        (lambda: dn.VPPrecond(beta_d=0.0), "beta_d"),
        (lambda: dn.VPPrecond(beta_min=float("inf")), "beta_min"),
        (lambda: dn.VPPrecond(M=0), "M"),
        (lambda: dn.IDDPMPrecond(np.array([1.0, 2.0, 0.0])), "u must be strictly descending"),
        (lambda: dn.IDDPMPrecond(np.array([[1.0, 0.0]])), "u must be a 1-D"),
        (lambda: dn.iddpm_sigmas(0), "M"),
        (lambda: dn.iddpm_sigmas(10, C1=0.0), "C1"),
    ],
)
def test_preconditionings_refuse_bad_numbers_naming_them(make, match):
    with pytest.raises(gm.errors.ArgumentError, match=match):
        make()


def test_preconditioning_numbers_keep_float64_precision():
    """A preconditioning built without x64 holds its numbers as float64 leaves; float64 sigmas get
    coefficients exact to float64 rounding (the k-diffusion comparisons run at 1e-14), float32 ones stay
    float32."""
    from helpers import x64_mode

    pre, vp = dn.EDMPrecond(0.7), dn.VPPrecond(15.0, 0.2)
    s = np.geomspace(0.002, 80.0, 9)
    with x64_mode():
        c_skip, c_out, c_in, c_noise = pre.coefficients(jnp.asarray(s))
        assert c_skip.dtype == jnp.float64
        np.testing.assert_allclose(c_skip, 0.49 / (s**2 + 0.49), rtol=1e-14)
        np.testing.assert_allclose(c_out, s * 0.7 / np.sqrt(s**2 + 0.49), rtol=1e-14)
        t = (np.sqrt(0.04 + 30.0 * np.log1p(s**2)) - 0.2) / 15.0
        np.testing.assert_allclose(vp.coefficients(jnp.asarray(s))[3], 999 * t, rtol=1e-12)
        assert all(c.dtype == jnp.float32 for c in pre.coefficients(jnp.asarray(s, jnp.float32)))
