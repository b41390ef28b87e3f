"""Networks (gm.nets), model wrappers (gm.models) and classifier-free guidance (gm.guidance)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import genmodels as gm
from genmodels.models import PathModel, velocity

KEY = jax.random.key(0)


def _randomise_output(net, key, scale=0.1):
    """Add noise to every parameter (the zero-initialised output layers included) so that the output
    depends on every input."""
    nnx.update(net, _noisy(nnx.state(net, nnx.Param), key, scale))
    return net


@jax.jit
def _noisy(state, key, scale):
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(key, len(leaves))
    noisy = [leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype) for leaf, k in zip(leaves, keys, strict=False)]
    return jax.tree.unflatten(treedef, noisy)


# ---- networks --------------------------------------------------------------------------------------


@nnx.jit
def _apply(net, x, cond, labels=None):
    return net(x, cond, labels)


def test_mlp_shapes_jit_and_labels():
    net = _randomise_output(gm.nets.MLP(3, 32, 2, rngs=nnx.Rngs(0), num_classes=4), KEY)
    x = jax.random.normal(KEY, (5, 3))
    out = _apply(net, x, 0.3)
    assert out.shape == (5, 3)
    # scalar and per-row noise conditions agree; eager and jit agree
    np.testing.assert_allclose(out, _apply(net, x, jnp.full((5,), 0.3)), rtol=1e-6)
    np.testing.assert_allclose(out, net(x, 0.3), rtol=1e-5, atol=1e-6)
    labels = jnp.array([0, 1, 2, 3, 4])  # 4 = null label
    with_labels = _apply(net, x, 0.3, labels)
    assert not np.allclose(with_labels[:4], out[:4])
    np.testing.assert_allclose(with_labels[4], out[4], rtol=1e-5)  # None means the null label
    # rows are independent (needed by the JVP-based score-matching losses)
    np.testing.assert_allclose(_apply(net, x.at[1:].set(0.0), 0.3)[0], out[0], rtol=1e-5)


def test_mlp_output_starts_at_zero():
    net = gm.nets.MLP(2, 16, 1, rngs=nnx.Rngs(1))
    np.testing.assert_array_equal(net(jnp.ones((4, 2)), 0.1), 0.0)


@pytest.mark.parametrize(
    "call, err",
    [
        (lambda n: n(jnp.ones((4, 3)), 0.1), ValueError),  # wrong dim
        (lambda n: n(jnp.ones((4,)), 0.1), ValueError),  # no batch axis
        (lambda n: n(jnp.ones((4, 2)), jnp.ones(3)), ValueError),  # noise_cond shape
        (lambda n: n(jnp.ones((4, 2), jnp.int32), 0.1), TypeError),
        (lambda n: n(jnp.ones((4, 2)), 0.1, jnp.zeros(4, jnp.int32)), ValueError),  # unconditional net
    ],
)
def test_mlp_bad_inputs(call, err):
    with pytest.raises(err):
        call(gm.nets.MLP(2, 8, 1, rngs=nnx.Rngs(0)))


def test_bad_labels_and_constructor_args():
    net = gm.nets.MLP(2, 8, 1, rngs=nnx.Rngs(0), num_classes=3)
    x = jnp.ones((2, 2))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        net(x, 0.1, jnp.array([0, 4]))
    with pytest.raises(TypeError, match="integer"):
        net(x, 0.1, jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        net(x, 0.1, jnp.array([0, 1, 2]))
    with pytest.raises(Exception, match=r"\[0, 3\]"):  # traced labels: checked inside jit
        jax.block_until_ready(nnx.jit(lambda n, y: n(x, 0.1, y))(net, jnp.array([0, 7])))
    with pytest.raises(ValueError, match="depth"):
        gm.nets.MLP(2, 8, 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="features"):
        gm.nets.MLP(2, 8, 1, rngs=nnx.Rngs(0), embedding=gm.nets.NoiseEmbedding(features=7))


@pytest.fixture(scope="module")
def unet():
    """One small U-Net (3 levels, so H and W divisible by 4) serves 8x8 and 28x28 inputs."""
    net = gm.nets.UNet(base=8, channel_mult=(1, 1, 1), num_heads=2, rngs=nnx.Rngs(0), num_classes=10)
    return _randomise_output(net, KEY)


def test_unet_8x8_shapes_labels_and_rows(unet):
    x = jax.random.normal(KEY, (3, 8, 8, 1))
    c = jnp.array([0.1, -0.5, 1.0])
    out = _apply(unet, x, c)
    assert out.shape == (3, 8, 8, 1) and bool(jnp.all(jnp.isfinite(out)))
    cond = _apply(unet, x, c, jnp.array([1, 2, 10]))
    assert not np.allclose(cond[:2], out[:2])
    np.testing.assert_allclose(cond[2], out[2], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_apply(unet, x.at[1:].set(1.0), c)[0], out[0], rtol=1e-4, atol=1e-6)


def test_unet_28x28_and_bad_shapes(unet):
    assert _apply(unet, jnp.zeros((2, 28, 28, 1)), 0.5).shape == (2, 28, 28, 1)
    with pytest.raises(ValueError, match="divisible by 4"):
        unet(jnp.zeros((2, 10, 10, 1)), 0.5)
    with pytest.raises(ValueError, match="NHWC"):
        unet(jnp.zeros((2, 1, 28, 28)), 0.5)
    with pytest.raises(ValueError, match="NHWC"):
        unet(jnp.zeros((2, 28, 28)), 0.5)
    with pytest.raises(ValueError, match="labels"):
        unet(jnp.zeros((2, 8, 8, 1)), 0.5, jnp.array([0, 11]))
    with pytest.raises(ValueError, match="num_heads"):
        gm.nets.UNet(base=6, channel_mult=(1, 1), num_heads=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="channel_mult"):
        gm.nets.UNet(channel_mult=(), rngs=nnx.Rngs(0))


# ---- model wrappers --------------------------------------------------------------------------------


def test_edm_model_with_zero_net_is_c_skip_x():
    model = gm.models.EDMModel(lambda x, c: jnp.zeros_like(x), sigma_data=0.7)
    x = jax.random.normal(KEY, (4, 2))
    sigma = jnp.array([0.1, 0.5, 2.0, 30.0])
    c_skip = 0.49 / (sigma**2 + 0.49)
    np.testing.assert_allclose(model.denoise(x, sigma), c_skip[:, None] * x, rtol=1e-6)
    np.testing.assert_array_equal(model.denoise(x, 0.0), x)  # D(x, 0) = x exactly
    assert model.sigma_data == 0.7


@pytest.mark.parametrize("precond", [gm.denoisers.EDMPrecond(0.5), gm.denoisers.VPPrecond(), gm.denoisers.VEPrecond()])
def test_edm_model_round_trips_exact_denoiser(precond):
    """F = (D* - c_skip x) / c_out under any preconditioning gives back D*."""
    mix = gm.targets.eight_gaussians()

    def net(x_in, c_noise):  # recovers sigma from c_in (all three have c_in = 1/sqrt(s^2+sd^2) or 1)
        return net_holder["f"](x_in, c_noise)

    sigma = jnp.array([0.05, 0.4, 3.0])
    x = jax.random.normal(KEY, (3, 2)) * 2
    c_skip, c_out, c_in, _ = precond.coefficients(sigma)
    net_holder = {"f": lambda x_in, c: (mix.denoise(x, sigma) - c_skip[:, None] * x) / c_out[:, None]}
    model = gm.models.EDMModel(net, precond=precond)
    np.testing.assert_allclose(model.denoise(x, sigma), mix.denoise(x, sigma), rtol=1e-5, atol=1e-5)


def test_score_model():
    mix = gm.targets.eight_gaussians()
    model = gm.models.ScoreModel(lambda x, c: jnp.exp(4.0 * c)[:, None] * mix.score(x, jnp.exp(4.0 * c)))
    x = jax.random.normal(KEY, (5, 2)) * 2
    sigma = jnp.array([0.1, 0.3, 1.0, 2.0, 5.0])
    np.testing.assert_allclose(model.score(x, sigma), mix.score(x, sigma), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.denoise(x, sigma), mix.denoise(x, sigma), rtol=1e-5, atol=1e-5)


def exact_path_net(mix, path, parameterization):
    """The exact network of ``parameterization`` on ``path`` for the mixture ``mix``."""

    def net(x_t, t):
        r = lambda v: v[:, None]  # noqa: E731
        a, b = r(path.alpha(t)), r(path.noise_std(t))
        sigma = path.sigma(t)
        finite = r(jnp.isfinite(sigma))
        d = jnp.where(
            finite,
            mix.denoise(x_t / jnp.where(finite, a, 1.0), jnp.where(jnp.isfinite(sigma), sigma, 1.0)),
            mix.at_infinity(x_t),  # t = t_max with sigma = inf: E[x0]
        )
        eps = (x_t - a * d) / b
        return {
            "Eps": eps,
            "V": a * eps - b * d,
            "Score": -eps / b,
            "Velocity": r(path.scale_deriv(t)) * d + r(path.noise_std_deriv(t)) * eps,
            "X0": d,
        }[type(parameterization).__name__]

    return net


PARAMETERIZATIONS = [
    gm.denoisers.Eps(),
    gm.denoisers.V(),
    gm.denoisers.Score(),
    gm.denoisers.Velocity(),
    gm.denoisers.X0(),
]


@pytest.mark.parametrize("path", [gm.paths.Linear(), gm.paths.Cosine(), gm.paths.VP()], ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("param", PARAMETERIZATIONS, ids=lambda p: type(p).__name__)
def test_path_model_round_trip(path, param):
    mix = gm.targets.random_mixture(KEY, 2, k=3)
    model = PathModel(exact_path_net(mix, path, param), path, param)
    x = jax.random.normal(jax.random.key(1), (4, 2)) * 2
    sigma = jnp.array([0.05, 0.5, 2.0, 10.0])
    np.testing.assert_allclose(model.denoise(x, sigma), mix.denoise(x, sigma), rtol=2e-4, atol=2e-4)
    t = jnp.array([0.1, 0.4, 0.6, 0.9])
    x_t = x * path.alpha(t)[:, None]
    np.testing.assert_allclose(velocity(model, x_t, t), velocity(mix, x_t, t, path), rtol=2e-4, atol=2e-4)
    has_limit = isinstance(model, gm.protocols.HasLimitAtInfinity)
    assert has_limit == isinstance(param, (gm.denoisers.V, gm.denoisers.Velocity, gm.denoisers.X0))
    if has_limit and np.isinf(float(path.sigma(path.t_max))):
        np.testing.assert_allclose(model.at_infinity(x), mix.at_infinity(x), rtol=1e-4, atol=1e-4)


def test_path_model_sampling_from_infinity():
    mix = gm.targets.DiagonalGaussian([1.0, -2.0], [0.5, 0.5])
    lin = gm.paths.Linear()
    sampler = gm.samplers.Euler(gm.schedules.uniform_t(lin, 32))
    x = gm.sample(PathModel(exact_path_net(mix, lin, gm.denoisers.Velocity())), sampler, KEY, (4000, 2))
    np.testing.assert_allclose(jnp.mean(x, 0), mix.mean, atol=0.05)
    np.testing.assert_allclose(jnp.std(x, 0), [0.5, 0.5], atol=0.05)
    with pytest.raises(ValueError, match="at_infinity"):
        eps = gm.denoisers.Eps()
        gm.sample(PathModel(exact_path_net(mix, lin, eps), lin, eps), sampler, KEY, (4, 2))


def test_path_model_bad_args():
    with pytest.raises(TypeError, match="parameterization"):
        PathModel(lambda x, t: x, gm.paths.Linear(), "x0")
    with pytest.raises(ValueError, match="path"):
        PathModel(lambda x, t: x, None, gm.denoisers.Eps())
    with pytest.raises(TypeError, match="callable"):
        gm.models.EDMModel(3.0)


def test_models_are_pytrees_for_sample_and_grad():
    net = gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0))
    model = gm.models.EDMModel(net)
    x = gm.sample(model, gm.samplers.Heun(gm.schedules.karras(4)), KEY, (8, 2))
    assert x.shape == (8, 2)
    grads = nnx.grad(lambda m: jnp.sum(m.denoise(jnp.ones((3, 2)), 1.0) ** 2))(
        _randomise_output(model.net, KEY) and model
    )
    assert any(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))


# ---- conditioning and guidance ---------------------------------------------------------------------


def _conditional_model():
    net = _randomise_output(gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0), num_classes=3), KEY)
    return gm.models.EDMModel(net)


def test_with_labels_and_classifier_free_guidance():
    model = _conditional_model()
    labels = jnp.array([0, 1, 2, 1])
    x = jax.random.normal(KEY, (4, 2))
    sigma = jnp.full((4,), 0.7)
    d_u, d_c = model.denoise(x, sigma), model.denoise(x, sigma, labels)
    np.testing.assert_allclose(gm.models.with_labels(model, labels).denoise(x, sigma), d_c, rtol=1e-6)
    for w, want in ((0.0, d_u), (1.0, d_c), (2.5, d_u + 2.5 * (d_c - d_u))):
        got = gm.guidance.ClassifierFree(model, labels, w).denoise(x, sigma)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # usable as the model of gm.sample; the scale is traced
    sampler = gm.samplers.Heun(gm.schedules.karras(4))
    s1 = gm.sample(gm.guidance.ClassifierFree(model, labels, 1.0), sampler, KEY, (4, 2))
    s2 = gm.sample(gm.models.with_labels(model, labels), sampler, KEY, (4, 2))
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        gm.sample(gm.guidance.ClassifierFree(model, labels, 2.0), sampler, KEY, (3, 2))
    with pytest.raises(ValueError, match="integer"):
        gm.guidance.ClassifierFree(model, jnp.array([0.5]), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        gm.guidance.ClassifierFree(model, labels, float("nan"))


def test_guidance_at_infinity_for_flow_models():
    net = _randomise_output(gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0), num_classes=3), KEY)
    model = PathModel(net)
    labels = jnp.array([0, 2])
    eps = jax.random.normal(KEY, (2, 2))
    guided = gm.guidance.ClassifierFree(model, labels, 3.0)
    u, c = model.at_infinity(eps), model.at_infinity(eps, labels)
    np.testing.assert_allclose(guided.at_infinity(eps), u + 3.0 * (c - u), rtol=1e-5, atol=1e-6)
    x = gm.sample(guided, gm.samplers.Euler(gm.schedules.uniform_t(gm.paths.Linear(), 4)), KEY, (2, 2))
    assert bool(jnp.all(jnp.isfinite(x)))
    assert not hasattr(gm.guidance.ClassifierFree(_conditional_model(), labels, 1.0), "at_infinity")
    assert isinstance(guided, eqx.Module)


def test_two_time_mlp_takes_a_second_condition():
    one = gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0))
    two = gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0), second_time=True)
    assert isinstance(two, gm.protocols.TakesSecondTime) and not isinstance(one, gm.protocols.TakesSecondTime)
    x = jax.random.normal(KEY, (3, 2))
    two.out.kernel[...] = jax.random.normal(KEY, two.out.kernel.shape)  # the zero-initialised head hides the input
    a, b = two(x, 0.5, 0.1), two(x, 0.5, 0.9)
    assert a.shape == (3, 2) and not np.allclose(a, b)
