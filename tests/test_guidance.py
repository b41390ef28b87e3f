"""Guidance wrappers (gm.guidance): exact against hand-computed Gaussian denoisers, the guidance interval,
network-evaluation counts through gm.solve, traced numbers, protocol forwarding and bad input."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import COUNTER, Probe

import genmodels as gm
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.protocols import AbstractDenoiserModel, HasEvaluationCount, HasLimitAtInfinity

KEY = jax.random.key(0)
MEANS = np.array([[-1.0, 0.5], [1.5, -0.5]])  # one Gaussian per class
STDS = np.array([0.3, 0.6])
LABELS = jnp.array([0, 1, 1, 0])


class ClassGaussians(eqx.Module, AbstractDenoiserModel, HasLimitAtInfinity):
    """A class-conditional model with one isotropic Gaussian per class (equal class weights); ``inflate``
    widens every component (an imperfect model in a controlled way). Unconditional: the two-class mixture."""

    means: jax.Array
    stds: jax.Array

    def __init__(self, inflate: float = 1.0):
        self.means = jnp.asarray(MEANS, jnp.float32)
        self.stds = jnp.asarray(STDS * inflate, jnp.float32)

    def _mixture(self):
        return gm.targets.GaussianMixture(jnp.ones(2), self.means, self.stds)

    def denoise(self, x, sigma, labels=None):
        if labels is None:
            return self._mixture().denoise(x, sigma)
        mu, s2 = self.means[labels], (self.stds[labels] ** 2)[:, None]
        sig2 = jnp.reshape(jnp.asarray(sigma, x.dtype) ** 2, (-1, 1))
        return mu + s2 / (s2 + sig2) * (x - mu)

    def at_infinity(self, eps, labels=None):
        mean = self.means.mean(0) if labels is None else self.means[labels]
        return jnp.broadcast_to(mean, eps.shape)


def _conditional(x, sigma, labels, inflate=1.0):
    """Hand-computed E[x0 | x, y]: mu + s^2 / (s^2 + sigma^2) (x - mu) per row (float64 numpy)."""
    mu, s2 = MEANS[labels], (STDS[labels] * inflate)[:, None] ** 2
    return mu + s2 / (s2 + np.reshape(sigma, (-1, 1)) ** 2) * (x - mu)


def _unconditional(x, sigma):
    """Hand-computed E[x0 | x] of the equal-weight two-Gaussian mixture (responsibilities by Bayes)."""
    sig2 = np.reshape(sigma, (-1, 1)) ** 2
    var = STDS[None, :] ** 2 + sig2  # (batch or 1, K)
    d2 = ((x[:, None, :] - MEANS[None]) ** 2).sum(-1)
    logp = -0.5 * d2 / var - np.log(var)  # 2-D isotropic: log det = 2 log var / 2
    r = np.exp(logp - logp.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    post = MEANS[None] + (STDS[None, :, None] ** 2 / var[..., None]) * (x[:, None, :] - MEANS[None])
    return (r[..., None] * post).sum(1)


X = np.asarray(jax.random.normal(KEY, (4, 2)), np.float64) * 1.5


@eqx.filter_jit
def _denoise(guided, x, sigma):
    """One compiled program per wrapper structure: new scales and interval ends reuse it."""
    return guided.denoise(x, sigma)


@pytest.mark.parametrize("sigma", [np.float32(0.7), np.array([0.2, 0.7, 3.0, 20.0])], ids=["scalar", "per-row"])
def test_classifier_free_and_interval_match_hand_computed(sigma):
    model, labels = ClassGaussians(), np.asarray(LABELS)
    cond, uncond = _conditional(X, sigma, labels), _unconditional(X, sigma)
    for w in (0.0, 1.0, 2.5):
        got = _denoise(gm.guidance.ClassifierFree(model, LABELS, w), jnp.asarray(X, jnp.float32), sigma)
        np.testing.assert_allclose(got, uncond + w * (cond - uncond), rtol=2e-5, atol=2e-5)
    # guidance interval [0.5, 4]: guided inside, the conditional model alone outside (row by row)
    guided = gm.guidance.ClassifierFree(model, LABELS, 3.0, interval=gm.guidance.GuidanceInterval(0.5, 4.0))
    inside = ((np.asarray(sigma) >= 0.5) & (np.asarray(sigma) <= 4.0)).reshape(-1, 1)
    want = np.where(inside, uncond + 3.0 * (cond - uncond), cond)
    np.testing.assert_allclose(_denoise(guided, jnp.asarray(X, jnp.float32), sigma), want, rtol=2e-5, atol=2e-5)


def test_autoguidance_matches_hand_computed():
    good, bad = ClassGaussians(1.1), ClassGaussians(1.6)
    sigma, labels = np.array([0.1, 0.5, 1.0, 5.0]), np.asarray(LABELS)
    d1, d0 = _conditional(X, sigma, labels, 1.1), _conditional(X, sigma, labels, 1.6)
    for w in (0.0, 1.0, 2.0):
        got = _denoise(gm.guidance.Autoguidance(good, bad, LABELS, w), jnp.asarray(X, jnp.float32), sigma)
        np.testing.assert_allclose(got, d0 + w * (d1 - d0), rtol=2e-5, atol=2e-5)
    # unconditional models: labels=None; the interval keeps D_1 outside [lo, hi]
    mix1 = gm.targets.eight_gaussians(std=0.3)
    mix0 = gm.targets.eight_gaussians(std=0.5)
    x = jnp.asarray(X, jnp.float32)
    auto = gm.guidance.Autoguidance(mix1, mix0, scale=2.0, interval=(1.0, 2.0))
    inside, outside = jnp.float32(1.5), jnp.float32(0.5)
    d1, d0 = _denoise(mix1, x, inside), _denoise(mix0, x, inside)
    np.testing.assert_allclose(_denoise(auto, x, inside), d0 + 2.0 * (d1 - d0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_denoise(auto, x, outside), _denoise(mix1, x, outside), rtol=1e-6)


def _expected_nfe(sampler_name, sigmas, lo, hi):
    """Network evaluations counted by hand: the denoiser's levels of each step, 2 inside [lo, hi], else 1."""
    s = np.asarray(sigmas, np.float64)
    levels = list(s[:-1]) + (list(s[1:][s[1:] > 0]) if sampler_name == "Heun" else [])
    sig = np.asarray(levels, np.float32)
    return int(sum(2 if lo <= v <= hi else 1 for v in sig)), len(levels)


@pytest.mark.parametrize("cls", [gm.samplers.Euler, gm.samplers.Heun], ids=lambda c: c.__name__)
def test_nfe_counts_network_evaluations_with_an_interval(cls):
    """Solution.nfe through gm.solve equals the hand count, and the model really runs that often: the
    unconditional evaluation is skipped (lax.cond) outside the interval."""
    sigmas = gm.schedules.karras(8)
    sampler = cls(sigmas)
    probe = Probe(ClassGaussians())
    for lo, hi in ((0.5, 3.0), (0.0, np.inf), (100.0, 200.0)):
        guided = gm.guidance.ClassifierFree(probe, LABELS, 2.0, interval=(lo, hi))
        sol, calls = COUNTER.count(lambda g=guided: gm.solve(g, sampler, KEY, (4, 2)))
        want, denoiser_calls = _expected_nfe(cls.__name__, sigmas, lo, hi)
        assert int(sol.nfe) == want == calls, (lo, hi, int(sol.nfe), want, calls)
    assert denoiser_calls == (8 if cls is gm.samplers.Euler else 15)
    plain = gm.guidance.ClassifierFree(probe, LABELS, 2.0)  # no interval: 2 per call
    assert int(gm.solve(plain, sampler, KEY, (4, 2)).nfe) == 2 * denoiser_calls


def test_nfe_from_sigma_infinity_and_per_row_sigma():
    """The first step at sigma = inf costs 2 only when hi = inf; one sigma per row costs 2 when any row is
    inside (both models run on the whole batch) and 1 when none is."""
    sigmas = jnp.concatenate([jnp.array([jnp.inf]), gm.schedules.karras(4)])
    model = ClassGaussians()
    for hi, first in ((np.inf, 2), (10.0, 1)):
        guided = gm.guidance.ClassifierFree(model, LABELS, 2.0, interval=(0.0, hi))
        nfe = int(gm.solve(guided, gm.samplers.Euler(sigmas), KEY, (4, 2)).nfe)
        assert nfe == first + _expected_nfe("Euler", sigmas[1:], 0.0, hi)[0], (hi, nfe)
    guided = gm.guidance.ClassifierFree(Probe(model), LABELS, 2.0, interval=(1.0, 2.0))
    x = jnp.asarray(X, jnp.float32)
    for rows, want in (([0.1, 1.5, 3.0, 3.0], 2), ([0.1, 0.2, 3.0, 3.0], 1)):
        sigma = jnp.asarray(rows)
        _, calls = COUNTER.count(lambda s=sigma: _denoise(guided, x, s))
        assert int(guided.evaluations(sigma)) == want == calls


def test_scale_and_interval_are_traced():
    """New scales and interval ends reuse the compiled sampler (the probe is traced by the first call only)."""
    probe = Probe(ClassGaussians())
    sampler = gm.samplers.Heun(gm.schedules.karras(4))
    runs = [
        gm.guidance.ClassifierFree(probe, LABELS, w, interval=(lo, hi))
        for w, lo, hi in ((1.5, 0.1, 2.0), (3.0, 0.5, 9.0), (0.0, 0.0, np.inf))
    ]
    runs_auto = [gm.guidance.Autoguidance(probe, ClassGaussians(2.0), LABELS, w) for w in (1.5, 2.5)]
    for batch in (runs, runs_auto):
        out = []
        for i, guided in enumerate(batch):
            before = COUNTER.traces
            out.append(gm.sample(guided, sampler, KEY, (4, 2)))
            assert (COUNTER.traces > before) == (i == 0), i
        assert not np.allclose(out[0], out[1])


def test_capabilities_forwarded():
    edm_like = gm.denoisers.as_denoiser(lambda x, sigma, labels=None: x)  # no limit at infinity
    cfg = gm.guidance.ClassifierFree(ClassGaussians(), LABELS, 2.0, interval=(0.5, 3.0))
    assert isinstance(cfg, HasLimitAtInfinity) and isinstance(cfg, HasEvaluationCount)
    assert not isinstance(gm.guidance.ClassifierFree(edm_like, LABELS, 2.0), HasLimitAtInfinity)
    both = gm.guidance.Autoguidance(ClassGaussians(), ClassGaussians(2.0), LABELS, 2.0)
    one = gm.guidance.Autoguidance(ClassGaussians(), edm_like, LABELS, 2.0)
    assert isinstance(both, HasLimitAtInfinity) and not isinstance(one, HasLimitAtInfinity)
    assert isinstance(one, gm.guidance.Autoguidance) and isinstance(one, gm.guidance.AbstractGuidance)
    # the limit is guided only when the interval reaches sigma = inf
    eps = jnp.asarray(X, jnp.float32)
    model = ClassGaussians()
    c, u = model.at_infinity(eps, LABELS), model.at_infinity(eps)
    np.testing.assert_allclose(gm.guidance.ClassifierFree(model, LABELS, 3.0).at_infinity(eps), u + 3 * (c - u))
    np.testing.assert_allclose(cfg.at_infinity(eps), c)
    leaves, treedef = jax.tree.flatten(cfg)
    assert isinstance(jax.tree.unflatten(treedef, leaves), HasLimitAtInfinity)


def test_bad_input_names_the_argument():
    model = ClassGaussians()
    with pytest.raises(ArgumentError, match="lo=3.0, hi=1.0"):
        gm.guidance.GuidanceInterval(3.0, 1.0)
    with pytest.raises(ArgumentError, match="0 <= lo <= hi"):
        gm.guidance.ClassifierFree(model, LABELS, 2.0, interval=(float("nan"), 1.0))
    with pytest.raises(ArgumentError, match="lo"):
        gm.guidance.GuidanceInterval(-1.0, 1.0)
    with pytest.raises(ArgumentError, match="scalar"):
        gm.guidance.GuidanceInterval(jnp.zeros(2), 1.0)
    with pytest.raises(ArgumentTypeError, match="interval"):
        gm.guidance.ClassifierFree(model, LABELS, 2.0, interval="middle")
    for bad in (float("inf"), float("nan")):
        for make in (
            lambda w: gm.guidance.ClassifierFree(model, LABELS, w),
            lambda w: gm.guidance.Autoguidance(model, model, LABELS, w),
        ):
            with pytest.raises(ArgumentError, match="scale"):
                make(bad)
    with pytest.raises(ArgumentError, match="scale must be a scalar"):
        gm.guidance.ClassifierFree(model, LABELS, jnp.ones(2))
    # a guide of another shape: refused at trace time, naming the guide
    wrong = gm.denoisers.as_denoiser(lambda x, sigma, labels=None: x[:, :1])
    sampler = gm.samplers.Euler(gm.schedules.karras(2))
    with pytest.raises(ArgumentError, match="guide must return an array of the input's shape"):
        gm.sample(gm.guidance.Autoguidance(model, wrong, LABELS, 2.0), sampler, KEY, (4, 2))
    with pytest.raises(ArgumentError, match="labels are fixed"):
        gm.guidance.Autoguidance(model, model, LABELS, 2.0).denoise(jnp.zeros((4, 2)), 1.0, LABELS)
    with pytest.raises(ArgumentError, match="guide"):
        gm.guidance.Autoguidance(model, None, LABELS, 2.0)


def test_traced_interval_is_checked_inside_the_program():
    @eqx.filter_jit
    def build(lo, hi):
        return gm.guidance.GuidanceInterval(lo, hi).lo

    assert float(build(jnp.float32(0.5), jnp.float32(1.0))) == 0.5
    with pytest.raises(Exception, match="0 <= lo <= hi"):
        jax.block_until_ready(build(jnp.float32(2.0), jnp.float32(1.0)))


@pytest.mark.slow
def test_guidance_experiment_runs_small(tmp_path):
    """experiments/guidance.py end to end on a tiny grid: every method, the table, the pictures."""
    from experiments import guidance

    argv = ["--out", str(tmp_path), "--per-class", "256", "--scales", "1", "2", "--steps", "4", "--quiet"]
    results = guidance.main(argv)
    methods = {r["method"] for r in results["rows"]}
    assert {"CFG", "CFG + [0.2, 2]", "autoguidance"} <= methods
    at_one = [r for r in results["rows"] if r["w"] == 1.0]
    precision = [r["precision"] for r in at_one]  # w = 1 is the good model for every method
    np.testing.assert_allclose(precision, precision[0], rtol=1e-4)
    assert all((tmp_path / f).exists() for f in ("results.json", "table.md", "samples.png", "tradeoff.png"))
