"""Training losses (gm.losses) against analytic truth: exact denoisers, scores and velocities of
Gaussians and Gaussian mixtures are the minimisers, closed-form objective values, exact OT."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.optimize import linear_sum_assignment

import genmodels as gm
from genmodels import losses as L
from genmodels.models import PathModel, velocity

KEY = jax.random.key(0)
MIX = gm.targets.eight_gaussians()
X0 = MIX.sample(jax.random.key(1), 4096)


def _bump(x, sigma):
    """A perturbation direction, scaled like c_out(sigma) so every weighting keeps it finite."""
    s = jnp.asarray(sigma).reshape(-1, *([1] * (x.ndim - 1)))
    return s / jnp.sqrt(1.0 + s**2) * jnp.tanh(x)


def _bump_sq(x, sigma):
    """A perturbation vanishing like sigma^2: keeps the heavy-tailed likelihood weighting's variance finite."""
    s = jnp.asarray(sigma).reshape(-1, *([1] * (x.ndim - 1)))
    return s**2 / (1.0 + s**2) * jnp.tanh(x)


def _optimal_offset(loss_of_delta):
    """delta* = argmin of the quadratic L(delta) (common random numbers make L exactly quadratic)."""
    g, h = jax.jit(lambda: (jax.grad(loss_of_delta)(0.0), jax.grad(jax.grad(loss_of_delta))(0.0)))()
    assert float(h) > 0
    return float(-g / h)


def _check_minimum(loss_of_model, exact, bump=_bump, tol=0.03):
    """The exact model minimises the loss along ``bump``; a model offset by 0.2 bump is detected."""
    d_exact = _optimal_offset(lambda d: loss_of_model(lambda x, s: exact(x, s) + d * bump(x, s)))
    d_wrong = _optimal_offset(lambda d: loss_of_model(lambda x, s: exact(x, s) + (0.2 + d) * bump(x, s)))
    assert abs(d_exact) < tol, d_exact
    assert abs(d_wrong + 0.2) < tol, d_wrong


# ---- denoising score matching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss, bump",
    [
        (L.edm_loss, _bump),
        (L.vp_loss, _bump),
        (L.ve_loss, _bump),
        (functools.partial(L.ncsn_loss, sigmas=L.ncsn_sigmas(10, 0.01, 2.0)), _bump),
        (
            functools.partial(
                L.dsm_loss, noise=L.PathTime(gm.paths.VE()), weighting=L.LikelihoodWeighting(gm.paths.VE())
            ),
            _bump_sq,
        ),
        (
            functools.partial(
                L.dsm_loss, noise=L.PathTime(gm.paths.VP()), weighting=L.LikelihoodWeighting(gm.paths.VP())
            ),
            _bump_sq,
        ),
    ],
    ids=["edm", "vp", "ve", "ncsn", "likelihood-ve", "likelihood-vp"],
)
def test_dsm_losses_are_minimal_at_the_exact_denoiser(loss, bump):
    _check_minimum(lambda model: loss(model, X0, KEY)[0], MIX.denoise, bump=bump)


def test_dsm_loss_equals_the_irreducible_posterior_variance():
    """For x0 ~ N(m, s^2) per dimension, E||D* - x0||^2 / dim at sigma is mean_d s_d^2 sigma^2 / (s_d^2 + sigma^2)."""
    std = np.array([0.5, 1.5])
    target = gm.targets.DiagonalGaussian([1.0, -1.0], std)
    sigmas = np.array([0.1, 0.5, 2.0])
    x0 = target.sample(jax.random.key(2), 40_000)
    loss = jax.jit(
        lambda x0, reduction: L.dsm_loss(
            target, x0, KEY, noise=L.Ladder(sigmas), weighting=L.Constant(), reduction=reduction
        )[0],
        static_argnums=1,
    )
    got = loss(x0, "mean")
    want = np.mean([np.mean(std**2 * s**2 / (std**2 + s**2)) for s in sigmas])
    np.testing.assert_allclose(float(got), want, rtol=0.03)
    got_sum = loss(x0, "sum")
    np.testing.assert_allclose(float(got_sum), 2 * float(got), rtol=1e-5)


def test_edm_loss_with_edm_model_and_metrics():
    net = gm.nets.MLP(2, 32, 2, rngs=nnx.Rngs(0))
    model = gm.models.EDMModel(net, sigma_data=0.7)
    # net = 0 at init, so D = c_skip x and the loss is the c_skip denoiser's loss with sigma_data = 0.7
    c_skip = lambda x, s: (0.49 / (0.49 + s**2))[:, None] * x  # noqa: E731
    loss, metrics = nnx.jit(lambda m: L.edm_loss(m, X0, KEY))(model)
    np.testing.assert_allclose(
        float(loss), float(jax.jit(lambda: L.edm_loss(c_skip, X0, KEY, sigma_data=0.7)[0])()), rtol=1e-5
    )
    assert set(metrics) == {"loss", "denoise_mse"}


def test_likelihood_weighting_on_ve_is_g_squared():
    ve = gm.paths.VE(0.01, 50.0)
    sigma = jnp.array([0.05, 1.0, 20.0])
    # g(t)^2 = d sigma^2/dt = 2 sigma^2 ln(50/0.01); on the denoiser error divide by sigma^4
    want = 2 * math.log(50.0 / 0.01) / sigma**2
    np.testing.assert_allclose(L.LikelihoodWeighting(ve)(sigma), want, rtol=1e-4)


def test_noise_distributions():
    n = 20_000
    s = L.LogNormal(-1.2, 1.2).sample(KEY, n)
    np.testing.assert_allclose([np.mean(np.log(s)), np.std(np.log(s))], [-1.2, 1.2], atol=0.03)
    s = L.LogUniform(0.02, 100.0).sample(KEY, n)
    assert float(s.min()) >= 0.02 and float(s.max()) <= 100.0
    np.testing.assert_allclose(np.mean(np.log(s)), 0.5 * (math.log(0.02) + math.log(100.0)), atol=0.05)
    ladder = L.ncsn_sigmas(5, 0.01, 1.0)
    np.testing.assert_allclose(ladder, np.geomspace(1.0, 0.01, 5), rtol=1e-5)
    assert set(np.round(np.asarray(L.Ladder(ladder).sample(KEY, 500)), 6)) == set(np.round(np.asarray(ladder), 6))
    with pytest.raises(ValueError):
        L.Ladder([0.1, -1.0])


# ---- score matching without denoising -----------------------------------------------------------------

D = 3
MEAN = np.array([0.5, -1.0, 2.0])
VAR = np.array([0.5, 1.0, 2.0])
A = np.array([[1.2, 0.3, 0.0], [-0.2, 0.8, 0.1], [0.4, 0.0, 0.6]])
B = np.array([0.3, -0.5, 1.5])


def _gaussian_model_score(x, sigma=None):
    return -(x - B) @ A.T


def _closed_form_j():
    """J(s) = E[tr grad s + 1/2 ||s||^2] = -tr A + 1/2 (tr(A Sigma A^T) + ||A (m - b)||^2)."""
    sigma = np.diag(VAR)
    return -np.trace(A) + 0.5 * (np.trace(A @ sigma @ A.T) + np.sum((A @ (MEAN - B)) ** 2))


def test_closed_form_is_the_fisher_divergence_up_to_its_constant():
    """1/2 E||s - grad log p||^2 = J(s) + 1/2 tr Sigma^-1 (checks the closed form used below)."""
    prec = np.diag(1 / VAR)
    bm = prec - A  # s - grad log p = (Sigma^-1 - A) x + (A b - Sigma^-1 m)
    c = A @ B - prec @ MEAN
    fisher = 0.5 * (np.trace(bm @ np.diag(VAR) @ bm.T) + np.sum((bm @ MEAN + c) ** 2))
    np.testing.assert_allclose(fisher, _closed_form_j() + 0.5 * np.trace(prec), rtol=1e-10)


GAUSS_X = gm.targets.DiagonalGaussian(MEAN, np.sqrt(VAR)).sample(jax.random.key(3), 40_000)


@pytest.mark.parametrize(
    "loss, rtol",
    [
        (L.exact_score_matching_loss, 0.02),
        (functools.partial(L.ssm_loss, num_projections=4), 0.05),
        (functools.partial(L.ssm_loss, num_projections=4, projection="rademacher"), 0.05),
        (functools.partial(L.ssm_loss, num_projections=2, variance_reduction=True), 0.03),
    ],
    ids=["exact", "ssm", "ssm-rademacher", "ssm-vr"],
)
def test_score_matching_objectives_match_the_closed_form(loss, rtol):
    got = float(jax.jit(lambda x: loss(_gaussian_model_score, x, KEY, reduction="sum")[0])(GAUSS_X))
    want = _closed_form_j()
    scale = abs(np.trace(A)) + 0.5 * (np.trace(A @ np.diag(VAR) @ A.T) + np.sum((A @ (MEAN - B)) ** 2))
    assert abs(got - want) < rtol * scale, (got, want)
    np.testing.assert_allclose(
        float(jax.jit(lambda x: loss(_gaussian_model_score, x, KEY)[0])(GAUSS_X)), got / D, rtol=1e-5
    )


@pytest.mark.parametrize("loss", [L.exact_score_matching_loss, functools.partial(L.ssm_loss, variance_reduction=True)])
def test_score_matching_is_minimal_at_the_exact_noisy_score(loss):
    noise = L.Ladder(jnp.array([0.1, 0.5, 1.0]))

    def bump(x, sigma):  # of the size of the score, ~ 1 / sigma
        return jnp.tanh(x) / jnp.sqrt(sigma**2 + 0.04)[:, None]

    _check_minimum(lambda model: loss(model, X0, KEY, noise=noise)[0], MIX.score, bump=bump)


def test_exact_score_matching_guards_dimension():
    with pytest.raises(ValueError, match="max_dim"):
        L.exact_score_matching_loss(lambda x, s: -x, jnp.zeros((4, 65)), KEY)
    with pytest.raises(ValueError, match="projection"):
        L.ssm_loss(lambda x, s: -x, jnp.zeros((4, 2)), KEY, projection="sphere")


# ---- flow matching ------------------------------------------------------------------------------------


def _exact_path_fn(mix, path, parameterization):
    """The exact network fn(x_t, t) of ``parameterization`` on ``path`` for the mixture (t of shape (batch,))."""

    def fn(x_t, t):
        if isinstance(parameterization, gm.denoisers.Velocity):
            return velocity(mix, x_t, t, path)
        a, b = path.alpha(t)[:, None], path.noise_std(t)[:, None]
        d = mix.denoise(x_t / a, path.sigma(t))
        eps = (x_t - a * d) / b
        exact = {gm.denoisers.Eps: eps, gm.denoisers.V: a * eps - b * d, gm.denoisers.Score: -eps / b}
        return exact[type(parameterization)]

    return fn


def _t_bump(x, t):
    return jnp.tanh(x) * (0.5 + jnp.asarray(t).reshape(-1, 1))


def test_cfm_loss_is_minimal_at_the_marginal_velocity():
    lin = gm.paths.Linear()
    _check_minimum(lambda fn: L.cfm_loss(fn, X0, KEY)[0], lambda x, t: velocity(MIX, x, t, lin), bump=_t_bump)


@pytest.mark.parametrize(
    "path, param",
    [
        (gm.paths.Cosine(), gm.denoisers.V()),
        (gm.paths.Cosine(), gm.denoisers.Velocity()),
        (gm.paths.Linear(), gm.denoisers.Eps()),
        (gm.paths.VP(), gm.denoisers.Eps()),
    ],
    ids=["cosine-v", "cosine-velocity", "linear-eps", "vp-eps"],
)
def test_path_loss_is_minimal_at_the_exact_prediction(path, param):
    exact = _exact_path_fn(MIX, path, param)
    t_min = 1e-3 if isinstance(param, gm.denoisers.Eps) else None
    t_max = 0.999 if isinstance(param, gm.denoisers.Eps) else None

    def loss(fn):
        model = PathModel(fn, path, param)
        return L.path_loss(model, X0, KEY, t_min=t_min, t_max=t_max)[0]

    _check_minimum(loss, exact, bump=_t_bump)


def test_flow_losses_bad_arguments():
    model = PathModel(lambda x, t: x, gm.paths.Cosine(), gm.denoisers.V())
    with pytest.raises(ValueError, match="Velocity"):
        L.path_loss(model, X0, KEY, parameterization=gm.denoisers.Velocity())
    with pytest.raises(ValueError, match="sigma_min"):
        L.path_loss(model, X0, KEY, sigma_min=0.1)
    with pytest.raises(ValueError, match="Linear"):
        L.cfm_loss(PathModel(lambda x, t: x, gm.paths.Cosine()), X0, KEY)
    assert np.isfinite(float(L.cfm_loss(lambda x, t: x, X0, KEY, sigma_min=0.1)[0]))


def test_ot_cfm_trains_under_jit():
    model = PathModel(gm.nets.MLP(2, 16, 1, rngs=nnx.Rngs(0)))
    step = nnx.jit(nnx.value_and_grad(lambda m, x, k: L.ot_cfm_loss(m, x, k), has_aux=True))
    (loss, _), grads = step(model, X0[:64], KEY)
    assert np.isfinite(float(loss))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


# ---- optimal transport --------------------------------------------------------------------------------


_ASSIGN = jax.jit(L.assignment)


@pytest.mark.parametrize("n", [7, 40])
def test_assignment_matches_exact_assignment(n):
    k1, k2 = jax.random.split(jax.random.key(n))
    x, y = MIX.sample(k1, n), jax.random.normal(k2, (n, 2))
    for cost in (L.squared_distances(x, y), jax.random.uniform(k2, (n, n))):
        perm = np.asarray(_ASSIGN(cost))
        assert sorted(perm.tolist()) == list(range(n))
        c = np.asarray(cost, dtype=np.float64)
        rows, cols = linear_sum_assignment(c)
        best = c[rows, cols].sum()
        got = c[np.arange(n), perm].sum()
        span = c.max() - c.min()
        assert got <= best + 1e-4 * span + 1e-5 * abs(best), (got, best)


def test_sinkhorn_plan():
    n = 32
    x, y = MIX.sample(jax.random.key(5), n), jax.random.normal(jax.random.key(6), (n, 2))
    cost = L.squared_distances(x, y)
    c = np.asarray(cost, dtype=np.float64)
    best = c[linear_sum_assignment(c)].sum() / n
    random_pairing = c.mean()
    plan = jax.jit(lambda c: L.sinkhorn(c, 0.01, 2000))(cost)
    np.testing.assert_allclose(np.asarray(plan).sum(0), 1 / n, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(plan).sum(1), 1 / n, rtol=2e-2)
    got = float(jnp.sum(plan * cost))
    assert best * (1 - 1e-4) <= got <= 1.05 * best < random_pairing
    default = float(jnp.sum(L.sinkhorn(cost) * cost))
    assert got <= default < 0.5 * random_pairing


def test_ot_coupling():
    n = 40
    x0, x1 = MIX.sample(jax.random.key(7), n), jax.random.normal(jax.random.key(8), (n, 2))
    c = np.asarray(L.squared_distances(x0, x1), dtype=np.float64)
    best = c[linear_sum_assignment(c)].sum()
    pair = jax.jit(lambda coupling, *args: coupling(*args))  # a coupling is a pytree: its numbers are traced
    exact = np.asarray(pair(L.ExactCoupling(), KEY, x0, x1))
    np.testing.assert_allclose(np.sort(exact, axis=0), np.sort(np.asarray(x1), axis=0))  # a permutation
    np.testing.assert_allclose(np.sum((np.asarray(x0) - exact) ** 2), best, rtol=1e-4)
    paired = np.asarray(pair(L.SinkhornCoupling(), KEY, x0, x1))
    assert all(np.any(np.all(row == np.asarray(x1), axis=1)) for row in paired)  # rows of x1
    assert np.sum((np.asarray(x0) - paired) ** 2) < 0.5 * c.trace()
    with pytest.raises(TypeError, match="coupling"):  # a coupling is a value, not a method name
        L.cfm_loss(lambda x, t: x, x0, KEY, coupling="hungarian")
    with pytest.raises(ValueError, match="square"):
        L.assignment(jnp.zeros((3, 4)))
    np.testing.assert_array_equal(L.assignment(jnp.ones((1, 1))), [0])


# ---- reflow -------------------------------------------------------------------------------------------

MU, STD = np.array([1.0, -2.0]), 0.5


def test_reflow_pairs_follow_the_gaussian_flow_map():
    """For N(mu, s^2 I) the Linear-path ODE maps the noise x1 to x0 = mu + s x1."""
    target = gm.targets.DiagonalGaussian(MU, [STD, STD])
    sampler = gm.samplers.Heun(gm.schedules.uniform_t(gm.paths.Linear(), 32))
    x0, x1 = L.reflow_pairs(target, sampler, KEY, (256, 2))
    np.testing.assert_allclose(x0, MU + STD * x1, atol=2e-3)


def test_reflow_loss_vanishes_for_a_deterministic_straight_coupling():
    x1 = jax.random.normal(KEY, (512, 2))
    x0 = MU + STD * x1

    def v(x_t, t):  # x1 is a function of x_t for this coupling, so the conditional velocity is exact
        t = t[:, None]
        z = (x_t - (1 - t) * MU) / ((1 - t) * STD + t)
        return (1 - STD) * z - MU

    assert float(jax.jit(lambda: L.reflow_loss(v, (x0, x1), KEY)[0])()) < 1e-8
    assert float(jax.jit(lambda: L.reflow_loss(lambda x, t: v(x, t) + 0.1, {"x0": x0, "x1": x1}, KEY)[0])()) > 5e-3
    with pytest.raises(ValueError, match="one shape"):
        L.reflow_loss(v, (x0, x1[:5]), KEY)


@pytest.mark.parametrize("std", [0.5, 1e-3])
def test_straightness_of_the_gaussian_flow(std):
    """x_t = (1 - t) mu + sigma_t z, sigma_t = sqrt((1 - t)^2 s^2 + t^2): S = d int (sigma_t' - 1 + s)^2 dt."""
    target = gm.targets.DiagonalGaussian(MU, [std, std])
    sampler = gm.samplers.Euler(gm.schedules.uniform_t(gm.paths.Linear(), 200))
    got = float(L.straightness(target, sampler, KEY, (2000, 2)))
    t = np.linspace(0.0, 1.0, 200_001)
    sig = np.sqrt((1 - t) ** 2 * std**2 + t**2)
    dsig = (t - (1 - t) * std**2) / sig
    want = 2 * np.trapezoid((dsig - 1 + std) ** 2, t)
    assert abs(got - want) < 0.05 * want + 2e-3, (got, want)


# ---- classifier-free guidance training, validation, trainer use ---------------------------------------


def test_drop_labels():
    labels = jnp.arange(10_000) % 7
    np.testing.assert_array_equal(L.drop_labels(KEY, labels, 0.0, 7), labels)
    np.testing.assert_array_equal(L.drop_labels(KEY, labels, 1.0, 7), 7)
    dropped = L.drop_labels(KEY, labels, 0.2, 7)
    kept = dropped != 7
    np.testing.assert_array_equal(dropped[kept], labels[kept])
    np.testing.assert_allclose(float(jnp.mean(~kept)), 0.2, atol=0.015)
    with pytest.raises(ValueError, match="probability"):
        L.drop_labels(KEY, labels, 1.5, 7)
    with pytest.raises(ValueError, match="integer"):
        L.drop_labels(KEY, labels.astype(float), 0.1, 7)


def test_with_label_dropout_and_conditional_training_batch():
    seen = {}

    def spy(model, batch, key):
        seen["labels"] = batch[1]
        return L.edm_loss(model, batch, key)

    net = gm.nets.MLP(2, 16, 1, rngs=nnx.Rngs(0), num_classes=3)
    model = gm.models.EDMModel(net)
    labels = jnp.arange(64) % 3
    loss, _ = L.with_label_dropout(spy, 1.0, 3)(model, {"x": X0[:64], "labels": labels}, KEY)
    assert np.isfinite(float(loss)) and bool(jnp.all(seen["labels"] == 3))
    with pytest.raises(ValueError, match="labels"):
        L.with_label_dropout(spy, 0.1, 3)(model, X0[:64], KEY)


@pytest.mark.parametrize(
    "batch, err, match",
    [
        (jnp.zeros((8,)), ValueError, "at least 2"),
        (jnp.zeros((8, 2), jnp.int32), TypeError, "floating"),
        (jnp.full((8, 2), jnp.nan), ValueError, "NaN"),
        ((jnp.zeros((8, 2)), jnp.zeros((7,), jnp.int32)), ValueError, r"shape \(8,\)"),
        ((jnp.zeros((8, 2)), jnp.zeros((8,))), TypeError, "integer"),
        ({"image": jnp.zeros((8, 2))}, None, None),
        ({"pixels": jnp.zeros((8, 2))}, ValueError, "keys"),
    ],
)
def test_batch_validation(batch, err, match):
    if err is None:
        assert np.isfinite(float(L.edm_loss(MIX, batch, KEY)[0]))
        return
    with pytest.raises(err, match=match):
        L.edm_loss(MIX, batch, KEY)


def test_nonfinite_data_inside_jit_and_bad_reduction():
    with pytest.raises(Exception, match="NaN"):
        jax.block_until_ready(jax.jit(lambda x: L.edm_loss(MIX, x, KEY))(jnp.full((4, 2), jnp.inf)))
    with pytest.raises(ValueError, match="reduction"):
        L.edm_loss(MIX, X0, KEY, reduction="max")


def test_losses_are_trainer_loss_fns():
    """functools.partial(loss, **options)(model, batch, key), differentiated through the nnx model."""
    model = gm.models.EDMModel(gm.nets.MLP(2, 16, 1, rngs=nnx.Rngs(0)))
    loss_fn = functools.partial(L.edm_loss, p_mean=-1.0)
    step = nnx.jit(nnx.value_and_grad(loss_fn, has_aux=True))
    (loss, _), grads = step(model, X0[:128], KEY)
    assert np.isfinite(float(loss))
    assert float(sum(jnp.sum(jnp.abs(g)) for g in jax.tree.leaves(grads))) > 0


@pytest.mark.slow
@pytest.mark.parametrize("family", ["edm", "cfm"])
def test_training_end_to_end_on_eight_gaussians(family):
    """A few thousand Adam steps of an MLP give the right component weights and on-mode samples."""
    import optax

    sd = float(jnp.sqrt(jnp.mean(jnp.diag(MIX.covariance))))
    net = gm.nets.MLP(2, 128, 3, rngs=nnx.Rngs(0))
    if family == "edm":
        model, loss_fn = gm.models.EDMModel(net, sigma_data=sd), L.edm_loss
        sampler = gm.samplers.Heun(gm.schedules.karras(18))
    else:
        model, loss_fn = PathModel(net), L.cfm_loss
        sampler = gm.samplers.Euler(gm.schedules.uniform_t(gm.paths.Linear(), 32))
    steps = 2000
    opt = nnx.Optimizer(model, optax.adam(optax.cosine_decay_schedule(2e-3, steps, 0.05)), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, key):
        k_data, k_loss = jax.random.split(key)
        x0 = MIX.sample(k_data, 512)
        (loss, _), grads = nnx.value_and_grad(lambda m: loss_fn(m, x0, k_loss), has_aux=True)(model)
        opt.update(model, grads)
        return loss

    for s in range(steps):
        step(model, opt, jax.random.fold_in(KEY, s))
    x = np.asarray(gm.sample(model, sampler, jax.random.key(123), (8000, 2)))
    frac = np.bincount(np.asarray(MIX.component_of(x)), minlength=8) / len(x)
    near = np.min(np.linalg.norm(x[:, None] - np.asarray(MIX.means)[None], axis=-1), axis=1) < 0.6  # 3 stds
    assert np.max(np.abs(frac - 1 / 8)) < 0.03, frac
    assert np.mean(near) > 0.9
