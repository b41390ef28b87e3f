"""gm.log_prob, bits_per_dim and dequantize against closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import COUNTER, Probe

import genmodels as gm
import genmodels.likelihood as LH
from genmodels.likelihood import dequantize

MU = jnp.array([0.5, -1.0, 2.0])
S = jnp.array([0.3, 1.0, 2.0])
SMIN, SMAX = 0.002, 80.0
GAUSS = gm.targets.DiagonalGaussian(MU, S)
X = GAUSS.sample(jax.random.key(1), 32)
KEY = jax.random.key(0)


def per_dim_log_stretch(sigma_min=SMIN, sigma_max=SMAX):
    """int div f dsigma per dimension for the Gaussian: log sqrt((S^2 + max^2) / (S^2 + min^2))."""
    return 0.5 * jnp.log((S**2 + sigma_max**2) / (S**2 + sigma_min**2))


def gaussian_ode_log_prob(x, sigma_min=SMIN, sigma_max=SMAX):
    """Closed form: the flow is x(sigma) = MU + sqrt(S^2+sigma^2)/sqrt(S^2+sigma_min^2) (x - MU) per dim,
    so log p = log N(x(sigma_max); 0, sigma_max^2 I) + sum log sqrt((S^2+max^2)/(S^2+min^2))."""
    z = MU + jnp.sqrt(S**2 + sigma_max**2) / jnp.sqrt(S**2 + sigma_min**2) * (x - MU)
    prior = -0.5 * jnp.sum(z**2, -1) / sigma_max**2 - 0.5 * x.shape[-1] * jnp.log(2 * jnp.pi * sigma_max**2)
    return prior + jnp.sum(per_dim_log_stretch(sigma_min, sigma_max))


def test_gaussian_exact_trace_matches_closed_form():
    stats = gm.likelihood.log_prob_result(GAUSS, X, KEY)
    lp = stats.log_prob
    truth = gaussian_ode_log_prob(X)
    assert lp.shape == (32,)
    err_default = float(jnp.max(jnp.abs(lp - truth)))
    assert err_default < 2e-3  # measured 4e-4 at rtol = atol = 1e-5 (float32)
    np.testing.assert_allclose(stats.prior_log_prob + stats.delta_log_prob, lp, rtol=1e-6)
    exact_latent = MU + jnp.sqrt(S**2 + SMAX**2) / jnp.sqrt(S**2 + SMIN**2) * (X - MU)
    np.testing.assert_allclose(stats.latent, exact_latent, rtol=1e-4, atol=1e-3)
    # tighter tolerance (traced: same program): error shrinks to ~1e-5
    lp_tight = gm.log_prob(GAUSS, X, KEY, rtol=1e-7, atol=1e-7)
    err_tight = float(jnp.max(jnp.abs(lp_tight - truth)))
    assert err_tight < 1e-4 and err_tight < err_default / 5


def test_other_sigma_range():
    lp = gm.log_prob(GAUSS, X, KEY, sigma_min=0.05, sigma_max=20.0)
    np.testing.assert_allclose(lp, gaussian_ode_log_prob(X, 0.05, 20.0), atol=2e-3)


def test_hutchinson_on_the_gaussian_is_exact_given_its_probes():
    """The Gaussian's Jacobian is diagonal, so v^T J v = sum_i J_ii v_i^2: Rademacher probes (v_i^2 = 1)
    give the exact trace, and Gaussian probes give sum_i mean_k(v_ki^2) * (per-dim log stretch) exactly,
    with the probes drawn as documented: jax.random.normal(key, (num_probes, *x.shape))."""
    exact = gm.log_prob(GAUSS, X, KEY)
    rad = gm.log_prob(GAUSS, X, KEY, trace=LH.Hutchinson(num_probes=1))
    np.testing.assert_allclose(rad, exact, atol=1e-3)
    key = jax.random.key(7)
    gau = gm.log_prob(GAUSS, X, key, trace=LH.Hutchinson(4, LH.Gaussian()))
    v = jax.random.normal(key, (4,) + X.shape)
    predicted = exact + jnp.sum((jnp.mean(v**2, axis=0) - 1.0) * per_dim_log_stretch(), axis=-1)
    np.testing.assert_allclose(gau, predicted, atol=2e-3)
    assert float(jnp.max(jnp.abs(gau - exact))) > 0.1  # the probes really matter here


MIX = gm.targets.eight_gaussians()
XM = MIX.sample(jax.random.key(2), 64)


def test_mixture_matches_true_density_up_to_prior_mismatch():
    """The exact denoiser's ODE carries p_{sigma_min} (the mixture convolved with N(0, sigma_min^2)) to
    p_{sigma_max} exactly; log_prob replaces p_{sigma_max} by N(0, sigma_max^2 I). So
    log_prob - prior(z) + log p_{sigma_max}(z) must equal log p_{sigma_min}(x) to solver accuracy, and
    log_prob itself is off by exactly the prior mismatch at z (measured ~2e-3 nats here)."""
    stats = gm.likelihood.log_prob_result(MIX, XM, KEY)
    lp = stats.log_prob
    truth = MIX.log_prob(XM, SMIN)
    mismatch = MIX.log_prob(stats.latent, SMAX) - stats.prior_log_prob
    corrected = lp + mismatch
    assert float(jnp.max(jnp.abs(corrected - truth))) < 2e-3  # measured 6e-4 (float32, rtol 1e-5)
    assert float(jnp.max(jnp.abs(mismatch))) < 1e-2  # honest size of the prior mismatch
    assert float(jnp.max(jnp.abs(lp - truth))) < float(jnp.max(jnp.abs(mismatch))) + 2e-3


def test_hutchinson_unbiased_and_spread_shrinks_with_probes():
    """Repeating one point R times in the batch gives R independent Hutchinson estimates in one solve
    (probes are drawn per row). Their mean is close to the exact trace, and averaging P probes per
    evaluation shrinks the spread by about sqrt(P)."""
    reps = XM.shape[0]  # same shape as XM: the exact solve reuses test_mixture's program
    x = jnp.broadcast_to(jnp.array([[1.3, 0.9]]), (reps, 2))  # between two components: J not diagonal
    exact = float(gm.log_prob(MIX, x, KEY)[0])
    est = {}
    for p in (1, 8):
        est[p] = np.asarray(gm.log_prob(MIX, x, jax.random.key(p), trace=LH.Hutchinson(num_probes=p)))
    sd1, sd8 = est[1].std(), est[8].std()
    assert sd1 > 0.01  # the estimator is really random here
    for p, sd in ((1, sd1), (8, sd8)):
        assert abs(est[p].mean() - exact) < 4 * sd / math.sqrt(reps) + 2e-3
    assert 1.8 < sd1 / sd8 < 4.5  # sqrt(8) = 2.83


def test_nfe_counts_real_calls_and_no_recompilation():
    model = Probe(MIX)  # counts traces and real calls (tests/helpers.py)
    x = XM[:16]
    gm.log_prob(model, x, KEY, trace=LH.Hutchinson())  # compile
    traces = COUNTER.traces
    stats, calls = COUNTER.count(lambda: LH.log_prob_result(model, x, KEY, trace=LH.Hutchinson()))
    assert int(stats.nfe) == calls == 6 * int(stats.num_steps) + 1  # Dopri5, FSAL
    # new data, key, parameters and numbers: same program
    other = Probe(gm.targets.eight_gaussians(radius=3.0, std=0.3))
    gm.log_prob(other, XM[16:32], jax.random.key(5), trace=LH.Hutchinson(), sigma_min=0.01, sigma_max=50.0, rtol=1e-4)
    assert COUNTER.traces == traces


def test_plain_callable_on_image_shaped_input():
    """A bare function D(x, sigma) works as well as an object with a ``denoise`` method (the targets), and
    x may have several data axes: (batch, 3, 1) here, the exact trace running over all 3 dimensions."""

    def fn(y, sigma):
        return GAUSS(y.reshape(-1, 3), sigma).reshape(y.shape)

    img = gm.log_prob(fn, X.reshape(32, 3, 1), KEY)
    np.testing.assert_allclose(img, gm.log_prob(GAUSS, X, KEY), rtol=1e-5, atol=1e-5)


def test_max_steps_error():
    with pytest.raises(Exception, match="max_steps=2"):
        jax.block_until_ready(gm.log_prob(MIX, XM[:4], KEY, max_steps=2))


@pytest.mark.parametrize(
    "kwargs, x, err, match",
    [
        ({}, jnp.ones((4, 3), jnp.int32), TypeError, "floating"),
        ({}, jnp.ones((3,)), ValueError, "batch"),
        ({}, jnp.array([[0.0, jnp.nan, 1.0]]), ValueError, "NaN"),
        ({"trace": "diag"}, None, ValueError, "trace"),
        ({"trace": lambda: LH.Hutchinson(probe="uniform")}, None, ValueError, "probe"),
        ({"trace": lambda: LH.Hutchinson(num_probes=0)}, None, ValueError, "num_probes"),
        ({"sigma_min": 1.0, "sigma_max": 0.5}, None, ValueError, "sigma_min"),
        ({"sigma_max": float("inf")}, None, ValueError, "sigma_max"),
        ({"rtol": -1.0}, None, ValueError, "rtol"),
        ({"max_steps": 0}, None, ValueError, "max_steps"),
        ({"solver": "dopri5"}, None, TypeError, "diffrax solver"),
    ],
)
def test_bad_inputs(kwargs, x, err, match):
    with pytest.raises(err, match=match):
        # a callable value is built inside the check: the estimators refuse bad options when built
        kwargs = {k: v() if callable(v) else v for k, v in kwargs.items()}
        gm.log_prob(GAUSS, X[:2] if x is None else x, KEY, **kwargs)


def test_trace_estimators_are_values():
    """ExactTrace() and Hutchinson(num_probes, probe) are static values (no arrays), so they key the compile;
    a string, the 0.1 spelling, gets an error that shows the new one."""
    hut = LH.Hutchinson(np.int64(3), LH.Gaussian())
    assert hut.num_probes == 3 and isinstance(hut.num_probes, int) and isinstance(hut.probe, LH.Gaussian)
    assert LH.Hutchinson() == LH.Hutchinson(1, LH.Rademacher()) and hash(LH.Hutchinson()) == hash(LH.Hutchinson(1))
    assert not jax.tree_util.tree_leaves((LH.ExactTrace(), hut))
    with pytest.raises(gm.errors.ArgumentError, match=r"Hutchinson\(num_probes, probe\)"):
        gm.log_prob(GAUSS, X[:2], KEY, trace="hutchinson")
    with pytest.raises(gm.errors.ArgumentTypeError, match="trace must be"):
        gm.log_prob(GAUSS, X[:2], KEY, trace=LH.Gaussian())
    with pytest.raises(gm.errors.ArgumentTypeError, match="probe must be"):
        LH.Hutchinson(2, probe=jax.random.normal)
    with pytest.raises(gm.errors.ArgumentError, match="num_probes"):
        LH.Hutchinson(num_probes=2.0)


def test_log_prob_result_matches_log_prob():
    # Hutchinson() == Hutchinson(num_probes=1): the program of the test above is reused
    res = LH.log_prob_result(GAUSS, X, KEY, trace=LH.Hutchinson())
    assert isinstance(res, LH.LogProbResult)
    np.testing.assert_array_equal(res.log_prob, gm.log_prob(GAUSS, X, KEY, trace=LH.Hutchinson(num_probes=1)))
    np.testing.assert_allclose(res.prior_log_prob + res.delta_log_prob, res.log_prob, rtol=1e-6)
    assert res.latent.shape == X.shape and int(res.nfe) == 6 * int(res.num_steps) + 1


def test_bad_key():
    with pytest.raises(TypeError, match="key"):
        gm.log_prob(GAUSS, X[:2], 0)


# ---- bits per dimension and dequantisation ---------------------------------------------------------------


def test_bits_per_dim_uniform_cube_is_log2_levels():
    """The uniform density on [-1, 1]^D (log p = -D log 2) puts mass 1/L^D on every bin: log2(L) bits."""
    d = 5
    bpd = gm.bits_per_dim(jnp.full((3,), -d * math.log(2.0)), d, num_levels=256, data_range=2.0)
    np.testing.assert_allclose(bpd, 8.0, rtol=1e-6)


def test_bits_per_dim_of_a_piecewise_constant_density_is_exact():
    """For independent categorical data P(k) per dimension, the density p(y) = prod P(k_i) / w on the
    bins (w = range / L) gives bits_per_dim = -sum log2 P(k_i) / D exactly."""
    levels, d = 16, 6
    probs = jax.nn.softmax(jax.random.normal(jax.random.key(0), (levels,)))
    k = jax.random.categorical(jax.random.key(1), jnp.log(probs), shape=(10, d))
    w = 3.0 / levels
    y = dequantize(jax.random.key(2), k, num_levels=levels, low=-1.0, high=2.0)
    lp = jnp.sum(jnp.log(probs[k]) - jnp.log(w), axis=-1)  # the density at y (constant on each bin)
    bpd = gm.bits_per_dim(lp, d, num_levels=levels, data_range=3.0)
    np.testing.assert_allclose(bpd, -jnp.sum(jnp.log2(probs[k]), axis=-1) / d, rtol=1e-5)
    # y lies in bin k: [low + k w, low + (k + 1) w)
    np.testing.assert_array_equal(np.floor((np.asarray(y) + 1.0) / w), np.asarray(k))


def test_dequantize_fills_bins_uniformly():
    x_int = jnp.zeros((20000,), jnp.int32) + 3
    y = dequantize(jax.random.key(0), x_int, num_levels=4, low=0.0, high=1.0)
    assert float(y.min()) >= 0.75 and float(y.max()) < 1.0
    np.testing.assert_allclose(float(y.mean()), 0.875, atol=0.002)
    np.testing.assert_allclose(float(y.var()), (0.25**2) / 12, rtol=0.05)


def test_dequantize_and_bits_per_dim_bad_inputs():
    with pytest.raises(TypeError, match="integer"):
        dequantize(KEY, jnp.ones(3), 4)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        dequantize(KEY, jnp.array([0, 4]), 4)
    with pytest.raises(ValueError, match="low < high"):
        dequantize(KEY, jnp.array([0, 1]), 4, low=1.0, high=0.0)
    with pytest.raises(ValueError, match="num_dims"):
        gm.bits_per_dim(jnp.zeros(2), 0)
    with pytest.raises(ValueError, match="num_levels"):
        gm.bits_per_dim(jnp.zeros(2), 3, num_levels=1)
