"""Gaussian paths (gm.paths) and noise schedules (gm.schedules) against their formulas."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64_mode

import genmodels as gm
from genmodels._checks import as_sigma_schedule
from genmodels.paths import EDM, VE, VP, Cosine, Linear, SubVP

PATHS = [VE(), VP(), SubVP(), EDM(), Linear(), Cosine()]
IDS = [type(p).__name__ for p in PATHS]


def interior(path, n=41):
    """Times strictly inside [t_min, t_max] (sigma finite and > 0 everywhere on it)."""
    lo, hi = path.t_min, path.t_max
    return jnp.linspace(lo, hi, n + 2)[1:-1]


def full(path, n=41):
    """Times on [t_min, t_max], leaving out t_max for the paths that reach sigma = inf there."""
    t = jnp.linspace(path.t_min, path.t_max, n)
    return t[:-1] if isinstance(path, (Linear, Cosine)) else t


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_inverse_sigma_round_trip(path):
    t = full(path)
    np.testing.assert_allclose(path.inverse_sigma(path.sigma(t)), t, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_sigma_increasing_and_positive(path):
    sig = np.asarray(path.sigma(full(path)))
    assert np.all(np.diff(sig) > 0)
    assert np.all(sig[1:] > 0) and sig[0] >= 0


def _grad(fn):
    return jax.vmap(jax.grad(lambda t: fn(t)))


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_derivatives_match_autodiff(path):
    t = interior(path)
    np.testing.assert_allclose(path.scale_deriv(t), _grad(path.scale)(t), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(path.sigma_deriv(t), _grad(path.sigma)(t), rtol=1e-4, atol=1e-5)
    # noise_std may be overridden: compare with the derivative of the product s * sigma itself
    np.testing.assert_allclose(
        path.noise_std_deriv(t), _grad(lambda u: path.scale(u) * path.sigma(u))(t), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_alpha_and_noise_std(path):
    t = full(path)
    np.testing.assert_allclose(path.alpha(t), path.scale(t), rtol=1e-6)
    np.testing.assert_allclose(path.noise_std(t), path.scale(t) * path.sigma(t), rtol=1e-5, atol=1e-7)


def test_published_defaults():
    vp = VP()
    assert (vp.beta_min, vp.beta_max, vp.t_min, vp.t_max) == (0.1, 20.0, 1e-3, 1.0)
    ve = VE()
    assert (ve.sigma_min, ve.sigma_max, ve.t_min, ve.t_max) == (0.01, 50.0, 0.0, 1.0)
    edm = EDM()
    assert (edm.sigma_min, edm.sigma_max, edm.sigma_data, edm.rho) == (0.002, 80.0, 0.5, 7.0)
    assert (edm.t_min, edm.t_max) == (0.002, 80.0)
    np.testing.assert_allclose([ve.sigma(0.0), ve.sigma(1.0)], [0.01, 50.0], rtol=1e-6)
    # VP: alpha(t) = exp(-(beta_min t + (beta_max - beta_min) t^2 / 2) / 2), noise_std^2 = 1 - alpha^2
    for t in (0.001, 0.3, 1.0):
        alpha = math.exp(-0.5 * (0.1 * t + 0.5 * 19.9 * t * t))
        np.testing.assert_allclose(vp.alpha(t), alpha, rtol=1e-5)
        np.testing.assert_allclose(vp.noise_std(t), math.sqrt(1 - alpha**2), rtol=1e-5)
        np.testing.assert_allclose(SubVP().noise_std(t), 1 - alpha**2, rtol=1e-4)
    np.testing.assert_allclose(edm.sigma(3.0), 3.0)
    np.testing.assert_allclose(edm.scale(3.0), 1.0)


@pytest.mark.parametrize("path", [Linear(), Cosine()], ids=["Linear", "Cosine"])
def test_flow_paths_reach_infinity(path):
    assert float(path.sigma(1.0)) == math.inf
    assert float(path.scale(1.0)) == 0.0
    assert float(path.noise_std(1.0)) == 1.0
    assert float(path.sigma(0.0)) == 0.0 and float(path.scale(0.0)) == 1.0
    assert float(path.inverse_sigma(jnp.inf)) == 1.0
    assert float(path.inverse_sigma(0.0)) == 0.0
    t = jnp.linspace(0.0, 1.0, 11)
    a, b = path.alpha(t), path.noise_std(t)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.asarray(a) >= 0)
    if isinstance(path, Cosine):
        np.testing.assert_allclose(a**2 + b**2, 1.0, rtol=1e-6)
    else:
        np.testing.assert_allclose(a + b, 1.0, rtol=1e-6)


# ---- schedules --------------------------------------------------------------------------------------------


def test_karras_formula_and_convention():
    steps, lo, hi, rho = 10, 0.002, 80.0, 7.0
    sig = np.asarray(gm.schedules.karras(steps, lo, hi, rho))
    i = np.arange(steps)
    expected = (hi ** (1 / rho) + i / (steps - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    assert sig.shape == (steps + 1,)
    np.testing.assert_allclose(sig[:-1], expected, rtol=1e-5)
    assert sig[-1] == 0.0
    np.testing.assert_allclose([sig[0], sig[-2]], [hi, lo], rtol=1e-5)
    as_sigma_schedule(sig)  # strictly descending, non-negative
    no_zero = np.asarray(gm.schedules.karras(steps, lo, hi, rho, final_zero=False))
    assert no_zero.shape == (steps + 1,) and no_zero[-1] > 0
    np.testing.assert_allclose([no_zero[0], no_zero[-1]], [hi, lo], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(gm.schedules.karras(1)), [80.0, 0.0])


def test_log_uniform():
    sig = np.asarray(gm.schedules.log_uniform(8, 0.01, 10.0))
    assert sig.shape == (9,) and sig[-1] == 0.0
    np.testing.assert_allclose(sig[[0, -2]], [10.0, 0.01], rtol=1e-5)
    np.testing.assert_allclose(np.diff(np.log(sig[:-1])), math.log(1e-3) / 7, rtol=1e-4)
    no_zero = np.asarray(gm.schedules.log_uniform(8, 0.01, 10.0, final_zero=False))
    assert no_zero.shape == (9,)
    np.testing.assert_allclose(np.diff(np.log(no_zero)), math.log(1e-3) / 8, rtol=1e-4)


@pytest.mark.parametrize("path", [VP(), VE(), SubVP()], ids=["VP", "VE", "SubVP"])
def test_uniform_t_diffusion_paths(path):
    steps = 10
    sig = np.asarray(gm.schedules.uniform_t(path, steps))
    assert sig.shape == (steps + 1,) and sig[-1] == 0.0
    np.testing.assert_allclose(sig[:-1], path.sigma(jnp.linspace(path.t_max, path.t_min, steps)), rtol=1e-5)
    as_sigma_schedule(sig)


@pytest.mark.parametrize("path", [Linear(), Cosine()], ids=["Linear", "Cosine"])
def test_uniform_t_flow_paths_start_at_infinity(path):
    steps = 8
    sig = np.asarray(gm.schedules.uniform_t(path, steps))
    assert sig.shape == (steps + 1,)
    assert sig[0] == math.inf and sig[-1] == 0.0
    np.testing.assert_allclose(sig[1:], path.sigma(jnp.linspace(1.0, 0.0, steps + 1))[1:], rtol=1e-5)
    as_sigma_schedule(sig)
    # a truncated start is finite
    trunc = np.asarray(gm.schedules.uniform_t(path, steps, t_max=0.9))
    assert np.isfinite(trunc[0])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: gm.schedules.karras(0), "steps"),
        (lambda: gm.schedules.karras(2.5), "steps"),
        (lambda: gm.schedules.karras(True), "steps"),
        (lambda: gm.schedules.karras(5, 1.0, 0.5), "sigma_min"),
        (lambda: gm.schedules.karras(5, 0.0, 1.0), "sigma_min"),
        (lambda: gm.schedules.log_uniform(5, -1.0, 1.0), "sigma_min"),
        (lambda: gm.schedules.uniform_t(VP(), 0), "steps"),
        (lambda: gm.schedules.uniform_t(VP(), 5, t_min=0.5, t_max=0.2), "t_min"),
    ],
)
def test_schedules_bad_inputs(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: gm.schedules.karras(5, rho=float("nan")), "rho"),
        (lambda: gm.schedules.karras(5, rho=0), "rho"),
        (lambda: gm.schedules.karras(5, rho=-2.0), "rho"),
        (lambda: gm.schedules.karras(5, 0.002, float("inf")), "sigma_max"),
        (lambda: gm.schedules.karras(5, float("nan"), 1.0), "sigma_min"),
        (lambda: gm.schedules.log_uniform(np.float32(3), 0.1, 1.0), "steps"),
        (lambda: gm.schedules.log_uniform(5, 1.0, 1.0), "sigma_min < sigma_max"),
        (lambda: gm.schedules.uniform_t(VE(), 5, t_max=float("nan")), "t_max"),
    ],
)
def test_schedules_refuse_bad_numbers_naming_them(make, match):
    """karras(rho=nan) used to return NaNs and rho=0 raised a bare ZeroDivisionError."""
    with pytest.raises(gm.errors.ArgumentError, match=match):
        make()


def test_schedules_take_numpy_ints_and_path_numbers():
    np.testing.assert_array_equal(gm.schedules.karras(np.int64(6)), gm.schedules.karras(6))
    edm = EDM()
    np.testing.assert_allclose(gm.schedules.karras(6, edm.sigma_min, edm.sigma_max, edm.rho), gm.schedules.karras(6))
    assert gm.schedules.uniform_t(VP(), np.int32(4)).shape == (5,)


def test_uniform_t_refuses_a_traced_path_clearly():
    with pytest.raises(gm.errors.ArgumentError, match="concrete"):
        jax.jit(lambda p: gm.schedules.uniform_t(p, 4))(VE())


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: VE(sigma_min=-1.0), "sigma_min"),
        (lambda: VE(sigma_min=10.0, sigma_max=1.0), "sigma_min < sigma_max"),
        (lambda: VE(sigma_max=float("nan")), "sigma_max"),
        (lambda: VP(beta_min=-0.1), "beta_min"),
        (lambda: VP(beta_min=5.0, beta_max=1.0), "beta_min < beta_max"),
        (lambda: SubVP(eps_t=1.0), "eps_t"),
        (lambda: EDM(sigma_data=0.0), "sigma_data"),
        (lambda: EDM(rho=float("inf")), "rho"),
        (lambda: EDM(sigma_min=1.0, sigma_max=0.5), "sigma_min < sigma_max"),
        (lambda: EDM(sigma_min=jnp.ones(2)), "sigma_min must be a scalar"),
    ],
)
def test_paths_refuse_bad_numbers_naming_them(make, match):
    """VE(sigma_min=-1) used to build a grid with NaNs and negative entries, VE(10, 1) an ascending one."""
    with pytest.raises(gm.errors.ArgumentError, match=match):
        make()


def test_paths_refuse_non_numbers():
    with pytest.raises(gm.errors.ArgumentTypeError, match="beta_max"):
        VP(beta_max="20")
    with pytest.raises(gm.errors.ArgumentTypeError, match="sigma_min"):
        VE(sigma_min=None)


def test_ascending_schedule_is_called_ascending():
    with pytest.raises(gm.errors.ScheduleError, match=r"sigmas is ascending"):
        as_sigma_schedule(jnp.array([0.1, 1.0, 5.0]))
    with pytest.raises(gm.errors.ScheduleError, match=r"my_schedule is ascending"):
        gm.samplers.Euler(as_sigma_schedule(np.array([0.0, 1.0, 5.0]), "my_schedule"))
    with pytest.raises(gm.errors.ScheduleError, match="strictly descending"):
        as_sigma_schedule(jnp.array([1.0, 2.0, 0.0]))


def test_check_schedule_dtype_float16():
    """float16 carries sigma <= sqrt(65504 / 4) ~ 128: beyond it sigma^2 (and sigma x noise) overflow."""
    from genmodels._checks import check_schedule_dtype, max_safe_sigma

    assert 127.0 < max_safe_sigma(jnp.float16) < 128.0 and max_safe_sigma(jnp.float32) > 1e18
    ok = gm.schedules.karras(10)  # sigma_max = 80
    assert check_schedule_dtype(ok, jnp.float16) is ok
    flow = gm.schedules.uniform_t(Linear(), 8)  # starts at inf: the limit at infinity, not a number
    assert check_schedule_dtype(flow, jnp.float16) is flow
    big = gm.schedules.karras(10, sigma_max=300.0)
    assert check_schedule_dtype(big, jnp.float32) is big
    with pytest.raises(gm.errors.ScheduleError, match=r"float16.*sigma_max <= 127\.9"):
        check_schedule_dtype(big, jnp.float16)
    with pytest.raises(eqx.EquinoxRuntimeError, match="float16"):  # traced: checked inside the program
        jax.block_until_ready(eqx.filter_jit(check_schedule_dtype)(big, jnp.float16))
    assert check_schedule_dtype(big, jnp.int32) is big  # not a floating dtype: nothing to check


def test_float64_numbers_keep_float64_precision():
    """A path built without x64 keeps its numbers exactly (float64 leaves) and computes in float64 when the
    input is float64; float32 inputs stay float32."""
    ve, vp = VE(0.002, 80.0), VP(0.1, 20.0)
    t = np.linspace(0.05, 0.95, 7)
    with x64_mode():
        s = np.asarray(ve.sigma(jnp.asarray(t)))
        assert s.dtype == np.float64
        np.testing.assert_allclose(s, 0.002 * (80.0 / 0.002) ** t, rtol=1e-14)
        la = -0.5 * (0.1 * t + 0.5 * 19.9 * t**2)
        np.testing.assert_allclose(np.asarray(vp.noise_std(jnp.asarray(t))), np.sqrt(-np.expm1(2 * la)), rtol=1e-14)
        assert ve.sigma(jnp.asarray(t, jnp.float32)).dtype == jnp.float32
