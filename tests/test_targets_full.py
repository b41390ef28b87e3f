"""Full-covariance and class-conditional targets (gm.targets) against dense brute force in float64."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genmodels as gm
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.targets import ClassMixture, FullGaussianMixture


def dense_truth(weights, means, covs, x, sigma):
    """log p_sigma(x) and the Tweedie denoiser of sum_k w_k N(mu_k, Sigma_k) by dense formulas (numpy):
    log N with slogdet and solve of Sigma_k + sigma^2 I, and mu_k + Sigma_k (Sigma_k + sigma^2 I)^-1 (x - mu_k)."""
    w, mu, cov, x = (np.asarray(a, np.float64) for a in (weights, means, covs, x))
    d = mu.shape[1]
    sig = np.broadcast_to(np.asarray(sigma, np.float64), x.shape[:1])
    noisy = cov + (sig**2)[:, None, None, None] * np.eye(d)  # (n, K, d, d)
    diff = x[:, None, :] - mu
    sol = np.linalg.solve(noisy, diff[..., None])[..., 0]
    lp = np.log(w / w.sum()) - 0.5 * (np.sum(diff * sol, -1) + np.linalg.slogdet(noisy)[1] + d * np.log(2 * np.pi))
    logp = np.logaddexp.reduce(lp, axis=-1)
    r = np.exp(lp - logp[:, None])
    return logp, np.einsum("nk,nkd->nd", r, mu + np.einsum("kde,nke->nkd", cov, sol))


@eqx.filter_jit
def exact_parts(model, x, sigma, labels=None):
    """log p, D, score and grad_x log p of ``model`` in one program."""
    sig = jnp.broadcast_to(sigma, x.shape[:1])
    lab = None if labels is None else labels[:, None]
    log_p = model.log_prob if labels is None else lambda xi, si, li: model.log_prob(xi, si, li)
    grad = jax.vmap(jax.grad(lambda xi, si, *li: log_p(xi[None], si, *li)[0]))(x, sig, *([] if lab is None else [lab]))
    lp = model.log_prob(x, sigma) if labels is None else model.log_prob(x, sigma, labels)
    return lp, model.denoise(x, sigma, labels), model.score(x, sigma, labels), grad


# ---- the class-conditional tree -------------------------------------------------------------------------


def small_tree():
    """Three classes, 7 branches each, 3 components per branch (float64 under x64)."""
    return gm.targets.branching_tree(jax.random.key(0), num_classes=3, depth=3, per_branch=3)


@pytest.fixture(scope="module")
def tree():
    return small_tree()


@pytest.mark.parametrize("sigma", [0.3, pytest.param("rows", marks=pytest.mark.slow)])  # rows: see [low rank]
def test_tree_conditional_and_unconditional_are_exact(x64, sigma):
    """Per class: log p_sigma(x | y) and D(x, sigma | y) against dense formulas, D = x + sigma^2 grad log p
    (Tweedie); unconditional D = sum_y p(y | x) D(x | y) with p(y | x) from the class priors."""
    tree, n = small_tree(), 24
    labels = jnp.arange(n) % 3
    x = tree.sample(jax.random.key(1), n, labels) + 0.3 * jax.random.normal(jax.random.key(2), (n, 2))
    sigma = jnp.linspace(0.0, 2.0, n) if sigma == "rows" else sigma
    cov, w, mu = tree.mixture.covariances, tree.mixture.weights, tree.mixture.means
    t = jnp.reshape(jnp.asarray(sigma), (-1, 1)) ** 2
    conditional = []
    for c in [*range(3), None]:
        keep = np.ones(len(w), bool) if c is None else np.asarray(tree.classes) == c
        logp, den = dense_truth(w[keep], mu[keep], cov[keep], x, sigma)
        lab = None if c is None else jnp.full((n,), c)
        got_lp, got_den, got_score, grad = exact_parts(tree, x, sigma, lab)
        np.testing.assert_allclose(got_lp, logp, rtol=1e-10)
        np.testing.assert_allclose(got_den, den, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(got_score, grad, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(x + t * grad, den, rtol=1e-8, atol=1e-8)
        conditional.append((got_lp, got_den))
    # unconditional = sum_y p(y | x) D(x | y), p(y | x) = p(y) p_sigma(x | y) / p_sigma(x)
    joint = jnp.stack([lp for lp, _ in conditional[:3]], -1) + jnp.log(tree.class_priors)
    post = jax.nn.softmax(joint, axis=-1)
    mixed = sum(post[:, c, None] * conditional[c][1] for c in range(3))
    np.testing.assert_allclose(conditional[3][1], mixed, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(jax.nn.logsumexp(joint, axis=-1), conditional[3][0], rtol=1e-12)


def test_tree_structure_priors_limits_and_variants(x64):
    tree = small_tree()
    assert isinstance(tree, gm.protocols.HasLimitAtInfinity) and isinstance(tree, gm.protocols.HasScore)
    assert tree.mixture.means.shape == (3 * 7 * 3, 2) and tree.num_classes == 3
    np.testing.assert_allclose(tree.mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(jnp.sqrt(jnp.diag(tree.mixture.covariance)), 0.5, rtol=1e-12)
    np.testing.assert_allclose(tree.class_priors @ tree.class_means, tree.mean, atol=1e-12)
    np.testing.assert_allclose(tree.for_class(1).mean, tree.class_means[1], rtol=1e-12)
    eps = jax.random.normal(jax.random.key(3), (6, 2))
    lab = jnp.array([0, 1, 2, 2, 1, 0])
    np.testing.assert_allclose(tree.at_infinity(eps, lab), tree.class_means[lab], rtol=1e-12)
    np.testing.assert_allclose(tree.denoise(1e7 * eps, 1e7, lab), tree.class_means[lab], atol=1e-6)
    np.testing.assert_allclose(tree.denoise(1e7 * eps, 1e7), tree.at_infinity(eps), atol=1e-6)
    # widening scales every covariance by factor^2, keeps the means; fewer components keep the moments
    wide = tree.widen(1.5)
    np.testing.assert_allclose(wide.mixture.covariances, 2.25 * tree.mixture.covariances, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(wide.mixture.means, tree.mixture.means)
    fine = gm.targets.branching_tree(jax.random.key(0), num_classes=3, depth=3)
    assert fine.mixture.means.shape == (3 * 7 * 8, 2)
    np.testing.assert_allclose(fine.mixture.covariance, tree.mixture.covariance, atol=1e-12)
    np.testing.assert_allclose(fine.class_means, tree.class_means, atol=1e-12)
    np.testing.assert_allclose(fine.class_priors, tree.class_priors, rtol=1e-12)
    other = gm.targets.branching_tree(jax.random.key(1), num_classes=3, depth=3, per_branch=3)
    assert not np.allclose(other.mixture.means, tree.mixture.means)


def dense_moments(weights, means, covs):
    """Mean and covariance of sum_k w_k N(mu_k, Sigma_k) (numpy)."""
    w, mu, cov = (np.asarray(a, np.float64) for a in (weights, means, covs))
    w = w / w.sum()
    m = w @ mu
    return m, np.einsum("k,kde->de", w, cov + mu[:, :, None] * mu[:, None, :]) - np.outer(m, m)


def assert_moments(x, mean, cov, n):
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 5 * np.sqrt(np.diag(cov) / n))
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)  # Gaussian approximation
    np.testing.assert_array_less(np.abs(np.cov(x, rowvar=False) - cov), 6 * se)


def test_tree_samples_per_class(tree):
    """Class samples' mean and covariance within sampling error; joint samples' labels follow the priors."""
    n = 6_000
    labels = np.arange(3 * n) % 3

    @eqx.filter_jit
    def draw(t, key):
        return t.sample(key, 3 * n, jnp.asarray(labels)), t.sample_labeled(key, n)

    samples, (x, y) = draw(tree, jax.random.key(0))
    m = tree.mixture
    for c in range(3):
        keep = np.asarray(tree.classes) == c
        moments = dense_moments(m.weights[keep], m.means[keep], m.covariances[keep])
        assert_moments(np.asarray(samples)[labels == c], *moments, n)
    assert x.shape == (n, 2) and y.shape == (n,)
    np.testing.assert_allclose(np.bincount(np.asarray(y), minlength=3) / n, tree.class_priors, atol=0.025)


def test_tree_drives_guidance_and_conditioning(tree):
    """ClassifierFree at scale 1 is the conditional model, at scale 0 the unconditional one; with_labels is
    the conditional model; gm.sample runs the guided tree in one program."""
    x = jax.random.normal(jax.random.key(7), (16, 2))
    labels = jnp.arange(16) % 3
    cond = tree.denoise(x, 0.4, labels)
    np.testing.assert_allclose(gm.guidance.ClassifierFree(tree, labels, 1.0).denoise(x, 0.4), cond, rtol=1e-5)
    np.testing.assert_allclose(gm.guidance.ClassifierFree(tree, labels, 0.0).denoise(x, 0.4), tree(x, 0.4), rtol=1e-5)
    np.testing.assert_allclose(gm.models.with_labels(tree, labels).denoise(x, 0.4), cond, rtol=1e-5)
    guided = gm.guidance.ClassifierFree(tree, labels, 2.0)
    samples = gm.sample(guided, gm.samplers.Euler(gm.schedules.karras(8)), jax.random.key(8), (16, 2))
    assert samples.shape == (16, 2) and np.all(np.isfinite(np.asarray(samples)))


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda t: t.denoise(jnp.zeros((4, 2)), 1.0, jnp.array([0, 1, 3, 0])), ArgumentError, "labels"),
        (lambda t: t.denoise(jnp.zeros((4, 2)), 1.0, jnp.array([0, -1, 0, 0])), ArgumentError, "labels"),
        (lambda t: t.denoise(jnp.zeros((4, 2)), 1.0, jnp.array([0, 1])), ArgumentError, "labels"),
        (lambda t: t.score(jnp.zeros((4, 2)), 1.0, jnp.zeros(4)), ArgumentTypeError, "labels"),
        (lambda t: t.log_prob(jnp.zeros((4, 3)), 1.0, jnp.zeros(4, int)), ArgumentError, r"\(\.\.\., 2\)"),
        (lambda t: t.denoise(jnp.zeros((4, 2)), jnp.ones(3)), ArgumentError, "sigma"),
        (lambda t: t.sample(jax.random.key(0), 4, 7), ArgumentError, "label"),
        (lambda t: t.for_class(3), ArgumentError, "label"),
        (lambda t: t.widen(0.0), ArgumentError, "factor"),
        (lambda t: ClassMixture(t.mixture, np.zeros(3, int)), ArgumentError, "classes"),
        (lambda t: gm.targets.branching_tree(jax.random.key(0), per_branch=9), ArgumentError, "per_branch"),
        (lambda t: gm.targets.branching_tree(jax.random.key(0), depth=0), ArgumentError, "depth"),
        (lambda t: gm.targets.branching_tree(jax.random.key(0), std=-1.0), ArgumentError, "std"),
    ],
)
def test_tree_bad_inputs(tree, call, err, match):
    with pytest.raises(err, match=match):
        call(tree)


def test_tree_unknown_class_under_jit_is_a_runtime_error(tree):
    f = eqx.filter_jit(lambda t, lab: t.denoise(jnp.zeros((2, 2)), 1.0, lab))
    with pytest.raises(eqx.EquinoxRuntimeError, match="labels"):
        jax.block_until_ready(f(tree, jnp.array([0, 5])))


# ---- full and low-rank-plus-isotropic mixtures ----------------------------------------------------------


def random_full_and_low_rank(d=5, k=3):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) / d + 0.1 * np.eye(d)
    means, weights = 2 * rng.normal(size=(k, d)), np.array([1.0, 2.0, 3.0])
    full = gm.targets.full_mixture(weights, means, covs)
    u = np.linalg.qr(rng.normal(size=(k, d, 2)))[0]
    low = FullGaussianMixture(weights, means, u, rng.uniform(0.5, 2.0, (k, 2)), rng.uniform(0.05, 0.2, k))
    return full, low, covs


@pytest.mark.parametrize("which", [pytest.param("full", marks=pytest.mark.slow), "low rank"])  # full: the tree
def test_full_and_low_rank_mixtures_are_exact(x64, which):
    """log p, D, score against dense float64 formulas, score = grad log p, D = x + sigma^2 score (Tweedie);
    the full mixture at a scalar sigma (0: D = x), the low-rank one at one sigma per row."""
    full, low, covs = random_full_and_low_rank()
    np.testing.assert_allclose(full.covariances, covs, rtol=1e-12, atol=1e-13)
    x = 2.0 * jax.random.normal(jax.random.key(0), (16, 5))
    mix, sigma = (full, 0.0) if which == "full" else (low, jnp.linspace(0.0, 3.0, 16))
    t = jnp.reshape(jnp.asarray(sigma), (-1, 1)) ** 2
    logp, den = dense_truth(mix.weights, mix.means, mix.covariances, x, sigma)
    got_lp, got_den, got_score, grad = exact_parts(mix, x, sigma)
    np.testing.assert_allclose(got_lp, logp, rtol=1e-11)
    np.testing.assert_allclose(got_den, den, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(got_score, grad, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(x + t * got_score, den, rtol=1e-9, atol=1e-10)


def test_low_rank_mixture_samples_limit_and_components(x64):
    _, low, _ = random_full_and_low_rank()
    n = 10_000
    eps = jax.random.normal(jax.random.key(2), (4, 5))

    @eqx.filter_jit
    def parts(mix):
        x = mix.sample(jax.random.key(1), n)
        return x, mix.component_of(x), mix.at_infinity(eps), mix.denoise(1e7 * eps, 1e7), mix.denoise(x[:8], 0.0)

    x, comp, limit, far, at_zero = parts(low)
    assert_moments(np.asarray(x), np.asarray(low.mean), np.asarray(low.covariance), n)
    np.testing.assert_allclose(np.bincount(np.asarray(comp), minlength=3) / n, low.weights, atol=0.02)
    np.testing.assert_allclose(limit, jnp.broadcast_to(low.mean, eps.shape), rtol=1e-12)
    np.testing.assert_allclose(far, limit, atol=1e-5)
    np.testing.assert_allclose(at_zero, x[:8], rtol=1e-12)


def test_digits_mixture_is_a_function_of_its_key():
    mix = gm.targets.digits_mixture(jax.random.key(0), components=4, rank=2)
    assert isinstance(mix, FullGaussianMixture) and mix.eigvecs.shape == (4, 64, 2)
    np.testing.assert_array_equal(mix.means, gm.targets.digits_mixture(jax.random.key(0), components=4, rank=2).means)
    assert not np.allclose(gm.targets.digits_mixture(jax.random.key(1), components=4, rank=2).means, mix.means)
    assert np.all(np.abs(np.asarray(mix.means)) <= 1.0) and np.all(np.asarray(mix.floor) > 0)
    assert np.all(np.asarray(mix.eigvals) >= np.asarray(mix.floor)[:, None])


@pytest.mark.slow
def test_digits_mixture_is_exact(x64):
    """The 64-D PPCA mixture against dense formulas, and its samples' moments."""
    mix = gm.targets.digits_mixture(jax.random.key(0), components=6, rank=4)
    x = mix.sample(jax.random.key(3), 8) + 0.2 * jax.random.normal(jax.random.key(4), (8, 64))
    for sigma in (0.0, 0.5, jnp.linspace(0.0, 2.0, 8)):
        logp, den = dense_truth(mix.weights, mix.means, mix.covariances, x, sigma)
        got_lp, got_den, got_score, grad = exact_parts(mix, x, jnp.asarray(sigma))
        np.testing.assert_allclose(got_lp, logp, rtol=1e-10)
        np.testing.assert_allclose(got_den, den, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(got_score, grad, rtol=1e-8, atol=1e-8)
    n = 50_000
    assert_moments(np.asarray(mix.sample(jax.random.key(5), n)), np.asarray(mix.mean), np.asarray(mix.covariance), n)


@pytest.mark.parametrize(
    "make, err, match",
    [
        (
            lambda: FullGaussianMixture(np.ones(2), np.zeros((2, 3)), np.ones((2, 3, 1)), np.ones((2, 1)), 0.1),
            ArgumentError,
            "orthonormal",
        ),
        (
            lambda: FullGaussianMixture(
                np.ones(2), np.zeros((2, 3)), np.eye(3)[None, :, :1].repeat(2, 0), np.zeros((2, 1)), 0.1
            ),
            ArgumentError,
            "eigvals",
        ),
        (
            lambda: FullGaussianMixture(
                np.ones(2), np.zeros((2, 3)), np.eye(3)[None, :, :1].repeat(2, 0), np.ones((2, 1))
            ),
            ArgumentError,
            "floor",
        ),
        (
            lambda: FullGaussianMixture(
                np.ones(2), np.zeros((2, 3)), np.eye(3)[None, :, :1].repeat(2, 0), np.ones((2, 2)), 0.1
            ),
            ArgumentError,
            "eigvals",
        ),
        (
            lambda: FullGaussianMixture(np.ones(3), np.zeros((2, 3)), np.eye(3)[None].repeat(2, 0), np.ones((2, 3))),
            ArgumentError,
            "weights",
        ),
        (
            lambda: FullGaussianMixture(
                np.ones(2), np.zeros((2, 3)), np.eye(3)[None, :, :1].repeat(2, 0), np.ones((2, 1)), np.ones(3)
            ),
            ArgumentError,
            "floor",
        ),
        (
            lambda: gm.targets.full_mixture(np.ones(1), np.zeros((1, 2)), [[[1.0, 0.5], [0.0, 1.0]]]),
            ArgumentError,
            "symmetric",
        ),
        (
            lambda: gm.targets.full_mixture(np.ones(1), np.zeros((1, 2)), [[[1.0, 0.0], [0.0, -1.0]]]),
            ArgumentError,
            "positive definite",
        ),
        (
            lambda: gm.targets.full_mixture(np.ones(1), np.zeros((1, 2)), np.eye(2)[None]).denoise(
                np.zeros((3, 3)), 1.0
            ),
            ArgumentError,
            "x must",
        ),
        (lambda: gm.targets.digits_mixture(jax.random.key(0), rank=64), ArgumentError, "rank"),
        (lambda: gm.targets.digits_mixture(jax.random.key(0), components=0), ArgumentError, "components"),
    ],
)
def test_full_mixture_bad_inputs(make, err, match):
    with pytest.raises(err, match=match):
        make()
