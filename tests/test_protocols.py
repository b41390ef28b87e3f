"""Nominal model protocols: what a model can do is answered by isinstance, through any stack of wrappers."""

from __future__ import annotations

import ast
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import genmodels as gm
from genmodels.protocols import (
    AbstractAutoregressiveModel,
    AbstractDenoiserModel,
    AbstractPathModel,
    HasExactSamples,
    HasLimitAtInfinity,
    HasScore,
    Incremental,
)

KEY = jax.random.key(0)
LABELS = jnp.array([0, 1, 1, 0])
MIX = gm.targets.eight_gaussians()


def _class_net():
    return gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0), num_classes=2)


def _flow_model():
    return gm.models.PathModel(_class_net(), gm.paths.Linear(), gm.denoisers.Velocity())


def _edm_model():
    return gm.models.EDMModel(_class_net())


def test_models_declare_their_protocols():
    assert isinstance(MIX, AbstractDenoiserModel) and isinstance(MIX, HasScore)
    assert isinstance(MIX, HasLimitAtInfinity) and isinstance(MIX, HasExactSamples)
    edm = _edm_model()
    assert isinstance(edm, AbstractDenoiserModel) and not isinstance(edm, HasLimitAtInfinity)
    assert isinstance(gm.models.ScoreModel(_class_net()), HasScore)
    flow = _flow_model()
    assert isinstance(flow, AbstractPathModel) and isinstance(flow, HasLimitAtInfinity)
    eps_model = gm.models.PathModel(_class_net(), gm.paths.VP(), gm.denoisers.Eps())
    assert isinstance(eps_model, AbstractPathModel) and not isinstance(eps_model, HasLimitAtInfinity)


@pytest.mark.parametrize("make, has_limit", [(_flow_model, True), (_edm_model, False)], ids=["velocity", "edm"])
def test_capabilities_forwarded_through_wrappers(make, has_limit):
    """Guidance of conditioning of preconditioning: isinstance tells the truth at every level."""
    model = make()
    conditioned = gm.models.with_labels(model, LABELS)
    guided = gm.guidance.ClassifierFree(model, LABELS, scale=2.0)
    guided_of_conditioned = gm.guidance.ClassifierFree(gm.models.with_labels(model, LABELS), LABELS, 1.5)
    for wrapped in (conditioned, guided, guided_of_conditioned):
        assert isinstance(wrapped, AbstractDenoiserModel)
        assert isinstance(wrapped, HasLimitAtInfinity) == has_limit
    if has_limit:  # the forwarded limit is the wrapped model's own
        eps = jax.random.normal(KEY, (4, 2))
        np.testing.assert_allclose(conditioned.at_infinity(eps), model.at_infinity(eps, LABELS), rtol=1e-6)


def test_forwarded_classes_survive_jit_and_sampling():
    guided = gm.guidance.ClassifierFree(_flow_model(), LABELS, scale=2.0)
    sampler = gm.samplers.Euler(gm.schedules.uniform_t(gm.paths.Linear(), 4))
    x = gm.sample(guided, sampler, KEY, (4, 2))  # starts at sigma = inf: needs the forwarded limit
    assert x.shape == (4, 2) and bool(jnp.all(jnp.isfinite(x)))
    leaves, treedef = jax.tree.flatten(guided)
    assert isinstance(jax.tree.unflatten(treedef, leaves), HasLimitAtInfinity)


def test_score_forwarded_only_when_native():
    assert isinstance(gm.models.with_labels(MIX, LABELS), HasScore)
    assert not isinstance(gm.models.with_labels(_edm_model(), LABELS), HasScore)


def test_plain_callables_are_wrapped_once():
    fn = lambda x, sigma: x / (1 + sigma**2)  # noqa: E731
    model = gm.denoisers.as_denoiser(fn)
    assert isinstance(model, gm.denoisers.CallableDenoiser) and gm.denoisers.as_denoiser(model) is model
    assert gm.denoisers.as_denoiser(MIX) is MIX
    x = gm.sample(fn, gm.samplers.Euler(gm.schedules.karras(4)), KEY, (3, 2))
    assert x.shape == (3, 2)


@pytest.mark.parametrize("bad", [None, 3.0, "denoiser"])
def test_non_models_are_refused_by_name(bad):
    with pytest.raises(gm.errors.ProtocolError, match="model"):
        gm.sample(bad, gm.samplers.Euler(gm.schedules.karras(4)), KEY, (3, 2))


def test_one_argument_callable_is_refused():
    with pytest.raises(gm.errors.ProtocolError, match=r"D\(x, sigma\)"):
        gm.sample(lambda x: x, gm.samplers.Euler(gm.schedules.karras(4)), KEY, (3, 2))


def test_autoregressive_protocols():
    rngs = nnx.Rngs(0)
    nade = gm.autoregressive.NADE(6, hidden=8, rngs=rngs)
    made = gm.autoregressive.MADE(6, hidden=(8,), rngs=rngs)
    for m in (nade, made):
        assert isinstance(m, AbstractAutoregressiveModel)
    assert isinstance(nade, Incremental) and not isinstance(made, Incremental)
    x = (jax.random.uniform(KEY, (5, 6)) < 0.5).astype(jnp.float32)
    np.testing.assert_allclose(nade.conditionals(x), nade.logits(x), rtol=1e-6)


def test_continuous_sampler_refuses_autoregressive_model_and_vice_versa():
    nade = gm.autoregressive.NADE(6, hidden=8, rngs=nnx.Rngs(0))
    with pytest.raises(gm.errors.ProtocolError, match="Ancestral"):
        gm.sample(nade, gm.samplers.Euler(gm.schedules.karras(4)), KEY, (3, 6))
    with pytest.raises(gm.errors.ProtocolError, match="AbstractAutoregressiveModel"):
        gm.sample(MIX, gm.samplers.Ancestral(), KEY, (3, 2))


def _probe_calls() -> list[str]:
    root = pathlib.Path(gm.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("hasattr", "getattr")
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_capability_probes_in_the_library():
    """Capabilities are nominal: at most two documented hasattr/getattr calls in genmodels/."""
    assert len(_probe_calls()) <= 2, _probe_calls()
