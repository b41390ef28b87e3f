"""New numbers reuse the compiled program: paths, preconditionings, noise distributions, weightings, and the
models and losses built from them.

Each case calls one ``eqx.filter_jit``-compiled function (or the library's own compiled entry point) with
three objects that differ only in their numbers, and counts traces with a Python side effect (it runs only
while JAX traces). One trace means the numbers are pytree leaves, not static Python floats. A case whose
numbers set a shape (a ladder's length, iDDPM's table length, the number of probes) is not one of these.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genmodels as gm
from genmodels import denoisers as dn
from genmodels import losses as L
from genmodels import paths as P

KEY = jax.random.key(0)
X0 = jax.random.normal(jax.random.key(1), (8, 2))


def traces_of(fn, variants) -> int:
    """How often ``fn`` is traced when called under one ``eqx.filter_jit`` with each argument tuple."""
    count = 0

    @eqx.filter_jit
    def run(*args):
        nonlocal count
        count += 1
        return fn(*args)

    for args in variants:
        jax.block_until_ready(run(*args))
    return count


def path_outputs(path, t):
    sig = path.sigma(t)
    return (path.scale(t), sig, path.alpha(t), path.noise_std(t), path.inverse_sigma(sig), path.scale_deriv(t),
            path.sigma_deriv(t), path.noise_std_deriv(t), jnp.asarray(path.t_min), jnp.asarray(path.t_max))  # fmt: skip


T = jnp.array([0.1, 0.4, 0.8])

PATHS = {
    "VE": [P.VE(), P.VE(0.02, 80.0), P.VE(sigma_min=0.05, sigma_max=10.0)],
    "VP": [P.VP(), P.VP(0.05, 15.0), P.VP(beta_min=0.2, beta_max=25.0, eps_t=1e-5)],
    "SubVP": [P.SubVP(), P.SubVP(0.05, 15.0), P.SubVP(eps_t=1e-4)],
    "EDM": [P.EDM(), P.EDM(0.01, 50.0, 0.7, 5.0), P.EDM(sigma_data=1.3)],
}


@pytest.mark.parametrize("name", list(PATHS))
def test_paths(name):
    assert traces_of(path_outputs, [(p, T) for p in PATHS[name]]) == 1


PRECONDS = {
    "EDMPrecond": [dn.EDMPrecond(), dn.EDMPrecond(0.7), dn.EDMPrecond(sigma_data=1.3)],
    "VPPrecond": [dn.VPPrecond(), dn.VPPrecond(15.0, 0.2), dn.VPPrecond(beta_d=10.0, beta_min=0.05, M=500)],
    "IDDPMPrecond": [
        dn.IDDPMPrecond(),
        dn.IDDPMPrecond(dn.iddpm_sigmas(1000, C1=0.002)),
        dn.IDDPMPrecond(dn.iddpm_sigmas(1000, C2=0.01)),
    ],  # fmt: skip
}
SIGMAS = jnp.array([0.01, 0.5, 3.0, 40.0])


@pytest.mark.parametrize("name", list(PRECONDS))
def test_preconditionings(name):
    assert traces_of(lambda pre, s: pre.coefficients(s), [(p, SIGMAS) for p in PRECONDS[name]]) == 1


NOISES = {
    "LogNormal": [L.LogNormal(), L.LogNormal(-0.4, 1.4), L.LogNormal(p_mean=0.0, p_std=0.5)],
    "LogUniform": [L.LogUniform(), L.LogUniform(0.01, 50.0), L.LogUniform(sigma_min=0.1, sigma_max=5.0)],
    "Ladder": [
        L.Ladder(L.ncsn_sigmas(5, 0.01, 1.0)),
        L.Ladder(L.ncsn_sigmas(5, 0.05, 3.0)),
        L.Ladder([4.0, 3, 2, 1, 0.5]),
    ],
    "PathTime": [L.PathTime(P.VP()), L.PathTime(P.VP(0.05, 15.0, 1e-5)), L.PathTime(P.VP(eps_t=0.1))],
    "PathTime-range": [
        L.PathTime(P.VE(), 0.1, 0.9),
        L.PathTime(P.VE(), 0.2, 0.5),
        L.PathTime(P.VE(0.02, 5.0), 0.0, 1.0),
    ],
}


@pytest.mark.parametrize("name", list(NOISES))
def test_noise_distributions(name):
    assert traces_of(lambda nz, k: nz.sample(k, 16), [(n, KEY) for n in NOISES[name]]) == 1


WEIGHTINGS = {
    "EDMWeighting": [L.EDMWeighting(), L.EDMWeighting(0.7), L.EDMWeighting(sigma_data=1.3)],
    "Constant": [L.Constant(), L.Constant(2.0), L.Constant(value=0.5)],
    "LikelihoodWeighting": [
        L.LikelihoodWeighting(P.VE()),
        L.LikelihoodWeighting(P.VE(0.02, 80.0)),
        L.LikelihoodWeighting(P.VE(0.05, 10.0)),
    ],  # fmt: skip
}


@pytest.mark.parametrize("name", list(WEIGHTINGS))
def test_weightings(name):
    assert traces_of(lambda w, s: w(s), [(w, SIGMAS) for w in WEIGHTINGS[name]]) == 1


def test_dsm_loss_with_new_noise_and_weighting():
    target = gm.targets.eight_gaussians()

    def loss(noise, weighting, x0, key):
        return L.dsm_loss(target, x0, key, noise=noise, weighting=weighting)

    variants = [(L.LogNormal(), L.EDMWeighting(), X0, KEY), (L.LogNormal(-0.4, 1.4), L.EDMWeighting(0.7), X0, KEY),
                (L.LogNormal(0.0, 0.5), L.EDMWeighting(1.3), X0, KEY)]  # fmt: skip
    assert traces_of(loss, variants) == 1


def test_edm_loss_with_traced_numbers():
    """edm_loss / vp_loss / ve_loss build their noise and weighting from numbers that may be traced."""
    target = gm.targets.eight_gaussians()

    def losses(num, x0, key):
        a, b, c = num
        return (L.edm_loss(target, x0, key, p_mean=-a, p_std=b, sigma_data=c)[0],
                L.vp_loss(target, x0, key, beta_min=0.1 * a, beta_d=20.0 * b)[0],
                L.ve_loss(target, x0, key, sigma_min=0.01 * c, sigma_max=50.0 * b)[0])  # fmt: skip

    nums = [jnp.array(v) for v in ([1.2, 1.2, 0.5], [0.4, 1.4, 0.7], [0.9, 0.8, 1.3])]
    assert traces_of(losses, [(n, X0, KEY) for n in nums]) == 1


def counting_net(counter: list):
    """A raw network F(x, c_noise) whose traces are appended to ``counter`` (a Python side effect)."""

    def net(x, c_noise, labels=None):
        counter.append(1)
        return 0.5 * jnp.tanh(x) + 0.01 * c_noise[:, None]

    return net


def reuses_program(call, variants, make_net=None) -> bool:
    """True when ``call(net, v)`` for the later variants traces ``net`` no more than the first call did (the
    library's compiled entry points may trace the model more than once while compiling). One net serves
    every variant: a new Python function would be a new static argument."""
    counter: list = []
    net = (make_net or counting_net)(counter)
    jax.block_until_ready(call(net, variants[0]))
    first = len(counter)
    for v in variants[1:]:
        jax.block_until_ready(call(net, v))
    return first >= 1 and len(counter) == first


SAMPLER = gm.samplers.Euler(gm.schedules.karras(4))
EDM_PRE = [dn.EDMPrecond(0.5), dn.EDMPrecond(0.7), dn.EDMPrecond(1.3)]
VP_PRE = [dn.VPPrecond(19.9, 0.1), dn.VPPrecond(15.0, 0.2), dn.VPPrecond(10.0, 0.05)]


@pytest.mark.parametrize("pre", [EDM_PRE, VP_PRE], ids=["EDMPrecond", "VPPrecond"])
def test_sample_and_log_prob_with_new_preconditioning_numbers(pre):
    def sample(net, p):
        return gm.sample(dn.precondition(net, p), SAMPLER, KEY, (8, 2))

    def log_prob(net, p):
        return gm.log_prob(dn.precondition(net, p), X0, KEY)

    assert reuses_program(sample, pre)
    if pre is EDM_PRE:  # one likelihood case is enough (each is a compile of the augmented ODE)
        assert reuses_program(log_prob, pre)


def test_edm_model_sigma_data_reuses_the_sampler_program():
    """EDMModel(net, sigma_data=...) with three values: the sampler program is compiled once."""

    def sample(net, sd):
        return gm.sample(gm.models.EDMModel(net, sigma_data=sd), SAMPLER, KEY, (8, 2))

    assert reuses_program(sample, [0.5, 0.7, 1.3])


def test_edm_model_sigma_data_reuses_the_loss_program():
    """edm_loss on EDMModels that differ only in sigma_data (its default weighting reads the model's)."""
    loss = eqx.filter_jit(lambda m, x0, k: L.edm_loss(m, x0, k)[0])

    def call(net, sd):
        return loss(gm.models.EDMModel(net, sigma_data=sd), X0, KEY)

    assert reuses_program(call, [0.5, 0.7, 1.3])


def test_edm_model_with_other_preconditioning_numbers():
    def sample(net, p):
        return gm.sample(gm.models.EDMModel(net, precond=p), SAMPLER, KEY, (8, 2))

    assert reuses_program(sample, VP_PRE)


def test_path_model_with_other_path_numbers():
    """A PathModel on VP paths that differ only in their numbers: one trace of the sampler program."""
    sampler = gm.samplers.Euler(gm.schedules.karras(4, 0.01, 10.0))

    def make_net(counter):
        def net(x_t, t, labels=None):
            counter.append(1)
            return jnp.tanh(x_t) * t[:, None]

        return net

    def sample(net, path):
        return gm.sample(gm.models.PathModel(net, path, dn.Eps()), sampler, KEY, (8, 2))

    assert reuses_program(sample, [P.VP(), P.VP(0.05, 15.0), P.VP(0.2, 25.0, 1e-5)], make_net)


def test_leaves_are_float64_copies_cast_at_use():
    """The stored numbers are exact float64 copies whatever jax_enable_x64 says; at use they take the input's
    dtype (float16 stays float16; nothing is promoted by a strongly typed leaf)."""
    edm = P.EDM(sigma_min=0.002)
    assert isinstance(edm.sigma_min, np.ndarray) and edm.sigma_min.dtype == np.float64 and edm.sigma_min == 0.002
    for dtype in (jnp.float16, jnp.bfloat16, jnp.float32):
        s = jnp.asarray([0.5, 2.0], dtype)
        assert all(c.dtype == dtype for c in dn.EDMPrecond(0.7).coefficients(s))
        assert P.VE().sigma(s).dtype == dtype and L.EDMWeighting(0.7)(s).dtype == dtype
        assert L.LogUniform().sample(KEY, 4, dtype).dtype == dtype


# ---- numbers are checked when a noise distribution or weighting is built -----------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.LogNormal(p_mean=float("nan")), "p_mean"),
        (lambda: L.LogNormal(p_std=-1.0), "p_std"),
        (lambda: L.LogUniform(1.0, 0.5), "sigma_min < sigma_max"),
        (lambda: L.LogUniform(sigma_min=0.0), "sigma_min"),
        (lambda: L.Ladder([0.1, -1.0]), "sigmas"),
        (lambda: L.Ladder([[0.1, 1.0]]), "sigmas"),
        (lambda: L.PathTime(P.VE(), t_min=0.9, t_max=0.1), "t_min < t_max"),
        (lambda: L.PathTime(P.VE(), t_min=float("inf")), "t_min"),
        (lambda: L.EDMWeighting(float("nan")), "sigma_data"),
        (lambda: L.Constant(-1.0), "value"),
        (lambda: L.ncsn_sigmas(1), "num_levels"),
        (lambda: L.ncsn_sigmas(5, 1.0, 0.1), "sigma_min < sigma_max"),
    ],
)
def test_noise_and_weightings_refuse_bad_numbers_naming_them(make, match):
    with pytest.raises(gm.errors.ArgumentError, match=match):
        make()


def test_noise_and_weightings_refuse_non_paths():
    with pytest.raises(gm.errors.ArgumentTypeError, match="path"):
        L.PathTime("VP")
    with pytest.raises(gm.errors.ArgumentTypeError, match="path"):
        L.LikelihoodWeighting(None)
