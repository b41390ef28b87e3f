"""Analytic targets (gm.targets): densities, scores, denoisers and samples against first principles."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genmodels as gm
from genmodels.targets import DiagonalGaussian, GaussianMixture

MIX = GaussianMixture(
    jnp.array([1.0, 3.0, 2.0]),  # unnormalised on purpose
    jnp.array([[-2.0, 0.0], [1.5, 1.0], [0.0, -2.5]]),
    jnp.array([[0.3, 0.6], [0.5, 0.4], [0.7, 0.7]]),
)
X = jax.random.normal(jax.random.key(0), (32, 2)) * 2.0
SIGMAS = [0.0, 0.1, 1.0, 10.0]


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_log_prob_normalises_on_a_grid(sigma):
    n = 601
    g = jnp.linspace(-8.0, 8.0, n)
    gx, gy = jnp.meshgrid(g, g, indexing="ij")
    pts = jnp.stack([gx.ravel(), gy.ravel()], -1)
    dens = np.asarray(jnp.exp(MIX.log_prob(pts, sigma))).reshape(n, n)
    h = float(g[1] - g[0])
    total = np.trapezoid(np.trapezoid(dens, dx=h, axis=1), dx=h)
    np.testing.assert_allclose(total, 1.0, atol=1e-4)


def test_weights_are_normalised():
    np.testing.assert_allclose(MIX.weights, [1 / 6, 1 / 2, 1 / 3], rtol=1e-6)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_score_is_grad_log_prob(sigma):
    grad = jax.vmap(jax.grad(lambda x: MIX.log_prob(x, sigma)))(X)
    np.testing.assert_allclose(MIX.score(X, sigma), grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_denoise_is_tweedie(sigma):
    np.testing.assert_allclose(MIX.denoise(X, sigma), X + sigma**2 * MIX.score(X, sigma), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(MIX(X, sigma), MIX.denoise(X, sigma))


def test_per_row_sigma():
    sig = jnp.linspace(0.1, 5.0, 32)
    rowwise = jax.vmap(lambda x, s: MIX.denoise(x[None], s)[0])(X, sig)
    np.testing.assert_allclose(MIX.denoise(X, sig), rowwise, rtol=1e-5, atol=1e-6)
    lp_rows = jax.vmap(lambda x, s: MIX.log_prob(x[None], s)[0])(X, sig)
    np.testing.assert_allclose(MIX.log_prob(X, sig), lp_rows, rtol=1e-5)


def _direct_mixture(target, x, sigma):
    """log p_sigma, score and denoiser of a diagonal mixture by the per-component formulas, in numpy float64."""
    w, mu, s = (np.asarray(a, np.float64) for a in (target.weights, target.means, target.stds))
    x = np.asarray(x, np.float64)
    sig = np.asarray(sigma, np.float64).reshape(-1, 1, 1) if np.ndim(sigma) else float(sigma)
    var = s**2 + sig**2
    diff = x[:, None, :] - mu
    lp = np.log(w) - 0.5 * np.sum(diff**2 / var + np.log(2 * np.pi * var), axis=-1)
    top = lp.max(-1, keepdims=True)
    r = np.exp(lp - top)
    log_p = np.log(r.sum(-1)) + top[:, 0]
    r = (r / r.sum(-1, keepdims=True))[..., None]
    return log_p, np.sum(r * -diff / var, 1), np.sum(r * (mu + s**2 / var * diff), 1)


def test_64d_mixture_matches_direct_formulas_in_float64(x64):
    """The matmul form (scalar sigma) and the per-row form agree with the per-component formulas to ~1e-12."""
    target = gm.targets.random_mixture(jax.random.key(6), dim=64, k=8)
    x0 = target.sample(jax.random.key(7), 64)
    noise = jax.random.normal(jax.random.key(8), x0.shape)
    parts = eqx.filter_jit(lambda t, x, s: (t.log_prob(x, s), t.score(x, s), t.denoise(x, s)))
    for sigma in (0.0, 0.3, 2.0, 80.0, jnp.linspace(0.0, 5.0, 64)):
        x = x0 + jnp.asarray(sigma)[..., None] * noise
        log_p, score, den = _direct_mixture(target, x, sigma)
        got_lp, got_score, got_den = parts(target, x, jnp.asarray(sigma))
        np.testing.assert_allclose(got_lp, log_p, rtol=1e-12)
        np.testing.assert_allclose(got_score, score, rtol=1e-10, atol=1e-10 * np.abs(score).max())
        np.testing.assert_allclose(got_den, den, rtol=1e-12, atol=1e-12 * np.abs(den).max())


def test_denoiser_limits():
    np.testing.assert_allclose(MIX.denoise(X, 0.0), X, rtol=1e-6, atol=1e-6)  # D(x, 0) = x
    eps = jax.random.normal(jax.random.key(1), (32, 2))
    np.testing.assert_allclose(MIX.at_infinity(eps), jnp.broadcast_to(MIX.mean, eps.shape), rtol=1e-6)
    np.testing.assert_allclose(MIX.denoise(1e4 * eps, 1e4), MIX.at_infinity(eps), atol=1e-3)


def test_diagonal_gaussian_closed_form():
    mu, s = jnp.array([0.5, -1.0, 2.0]), jnp.array([0.3, 1.0, 2.0])
    g = DiagonalGaussian(mu, s)
    x = jax.random.normal(jax.random.key(2), (8, 3))
    for sigma in (0.0, 0.7):
        var = s**2 + sigma**2
        lp = -0.5 * jnp.sum((x - mu) ** 2 / var + jnp.log(2 * math.pi * var), axis=-1)
        np.testing.assert_allclose(g.log_prob(x, sigma), lp, rtol=1e-5)
        np.testing.assert_allclose(g.denoise(x, sigma), mu + s**2 / var * (x - mu), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.covariance, jnp.diag(s**2), rtol=1e-6)


def test_samples_match_mean_covariance_and_weights():
    n = 100_000
    x = MIX.sample(jax.random.key(3), n)
    assert x.shape == (n, 2)
    cov = np.asarray(MIX.covariance)
    se_mean = np.sqrt(np.diag(cov) / n)
    np.testing.assert_array_less(np.abs(np.asarray(x.mean(0) - MIX.mean)), 5 * se_mean)
    emp_cov = np.cov(np.asarray(x), rowvar=False)
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)  # Gaussian approximation
    np.testing.assert_array_less(np.abs(emp_cov - cov), 6 * se_cov)
    counts = np.bincount(np.asarray(MIX.component_of(x)), minlength=3) / n
    # components overlap a little, so component_of is not exactly the generating component
    np.testing.assert_allclose(counts, MIX.weights, atol=0.01)
    # the mixture mean and covariance by their definitions
    w, mu, s = np.asarray(MIX.weights), np.asarray(MIX.means), np.asarray(MIX.stds)
    m = w @ mu
    np.testing.assert_allclose(MIX.mean, m, rtol=1e-5, atol=1e-6)
    second = sum(w[k] * (np.diag(s[k] ** 2) + np.outer(mu[k], mu[k])) for k in range(3))
    np.testing.assert_allclose(MIX.covariance, second - np.outer(m, m), rtol=1e-5, atol=1e-6)


def test_same_key_same_samples():
    np.testing.assert_array_equal(MIX.sample(jax.random.key(4), 16), MIX.sample(jax.random.key(4), 16))


def test_builders():
    eight = gm.targets.eight_gaussians(radius=2.0, std=0.2)
    assert eight.means.shape == (8, 2)
    np.testing.assert_allclose(jnp.linalg.norm(eight.means, axis=-1), 2.0, rtol=1e-6)
    np.testing.assert_allclose(eight.stds, 0.2)
    np.testing.assert_allclose(eight.mean, 0.0, atol=1e-6)
    grid = gm.targets.grid_gaussians(side=5, spacing=1.0)
    assert grid.means.shape == (25, 2)
    np.testing.assert_allclose(np.unique(np.asarray(grid.means[:, 0])), [-2, -1, 0, 1, 2], atol=1e-6)
    rnd = gm.targets.random_mixture(jax.random.key(5), dim=3, k=4)
    assert rnd.means.shape == (4, 3) and rnd.stds.shape == (4, 3)
    np.testing.assert_allclose(jnp.sum(rnd.weights), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "make, err, match",
    [
        (lambda: GaussianMixture(jnp.ones(2), jnp.zeros(2), 1.0), ValueError, "means"),
        (lambda: GaussianMixture(jnp.ones(3), jnp.zeros((2, 2)), 1.0), ValueError, "weights"),
        (lambda: GaussianMixture(jnp.array([1.0, -1.0]), jnp.zeros((2, 2)), 1.0), ValueError, "non-negative"),
        (lambda: GaussianMixture(jnp.zeros(2), jnp.zeros((2, 2)), 1.0), ValueError, "positive sum"),
        (lambda: GaussianMixture(jnp.ones(2), jnp.zeros((2, 2)), 0.0), ValueError, "stds"),
        (lambda: GaussianMixture(jnp.ones(2), jnp.zeros((2, 2)), jnp.ones((3, 2))), ValueError, "stds"),
        (lambda: MIX.log_prob(jnp.zeros((4, 3))), ValueError, r"\(\.\.\., 2\)"),
        (lambda: MIX.denoise(jnp.zeros((4, 3)), 1.0), ValueError, r"\(\.\.\., 2\)"),
        (lambda: MIX.score(jnp.zeros(()), 1.0), ValueError, r"\(\.\.\., 2\)"),
    ],
)
def test_bad_inputs(make, err, match):
    with pytest.raises(err, match=match):
        make()
