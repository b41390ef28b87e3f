"""gm.losses as values and types: a stable (loss, metrics) return, refusal of models of the wrong
gm.protocols kind, the learned loss weighting against its closed form, traced numbers (no recompilation),
and no attribute probes or string dispatch in the package."""

from __future__ import annotations

import ast
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import genmodels as gm
from genmodels import losses as L
from genmodels.errors import ArgumentError, ArgumentTypeError, ProtocolError

KEY = jax.random.key(0)
MIX = gm.targets.eight_gaussians()
X0 = MIX.sample(jax.random.key(1), 64)
LOSSES_DIR = pathlib.Path(gm.losses.__file__).parent


def _velocity_fn(x, t):
    return jnp.tanh(x) * (1.0 + jnp.asarray(t)[:, None])


def _edm_model():
    return gm.models.EDMModel(lambda x, c: jnp.tanh(x) * c[:, None], sigma_data=0.6)


class _FlowMapStub(eqx.Module, gm.protocols.AbstractFlowMapModel):
    """A flow-map model (callable, to tempt a loss into taking it as a plain function)."""

    def flow_map(self, x, sigma, sigma_next, labels=None):
        return x

    def __call__(self, x, sigma):
        return x


class _LearnedWeighting(eqx.Module, gm.protocols.AbstractDenoiserModel, gm.protocols.HasLearnedWeighting):
    """D(x, sigma) = scale x, u(sigma) = u0 + u1 ln sigma."""

    scale: jax.Array
    u0: jax.Array
    u1: jax.Array

    def denoise(self, x, sigma, labels=None):
        return self.scale * x

    def log_variance(self, sigma):
        return self.u0 + self.u1 * jnp.log(sigma)


# ---- a stable return type -----------------------------------------------------------------------------

LOSSES = {
    "dsm": lambda: L.dsm_loss(MIX, X0, KEY, noise=L.LogNormal(), weighting=L.EDMWeighting()),
    "edm": lambda: L.edm_loss(_edm_model(), X0, KEY),
    "vp": lambda: L.vp_loss(MIX, X0, KEY),
    "ve": lambda: L.ve_loss(MIX, X0, KEY),
    "ncsn": lambda: L.ncsn_loss(MIX, X0, KEY, sigmas=L.ncsn_sigmas(4)),
    "ssm": lambda: L.ssm_loss(MIX, X0, KEY, noise=0.3),
    "path": lambda: L.path_loss(gm.models.PathModel(_velocity_fn, gm.paths.Cosine(), gm.denoisers.V()), X0, KEY),
    "cfm": lambda: L.cfm_loss(_velocity_fn, X0, KEY),
    "ot_cfm": lambda: L.ot_cfm_loss(_velocity_fn, X0, KEY),
    "reflow": lambda: L.reflow_loss(_velocity_fn, (X0, jax.random.normal(KEY, X0.shape)), KEY),
    "label_dropout": lambda: L.with_label_dropout(L.edm_loss, 0.5, 3)(
        lambda x, sigma, labels=None: x / (1.0 + sigma[:, None] ** 2), (X0, jnp.zeros(64, jnp.int32)), KEY
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_returns_loss_and_metrics(name):
    out = LOSSES[name]()
    assert isinstance(out, tuple) and len(out) == 2
    loss, metrics = out
    assert jnp.shape(loss) == () and np.isfinite(float(loss))
    assert isinstance(metrics, dict) and float(metrics["loss"]) == float(loss)
    assert all(jnp.shape(v) == () for v in metrics.values())


# ---- the model a loss asks for ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, names",
    [
        (lambda m: L.cfm_loss(m, X0, KEY), ("cfm_loss", "AbstractPathModel", "EDMModel")),
        (lambda m: L.path_loss(m, X0, KEY), ("path_loss", "AbstractPathModel", "EDMModel")),
        (lambda m: L.reflow_loss(m, (X0, X0), KEY), ("reflow_loss", "AbstractPathModel", "EDMModel")),
    ],
    ids=["cfm", "path", "reflow"],
)
def test_path_losses_refuse_a_denoiser_model(call, names):
    """cfm_loss on an EDMModel used to train its denoiser as a velocity field without a word."""
    with pytest.raises(ProtocolError) as info:
        call(_edm_model())
    assert all(n in str(info.value) for n in names), str(info.value)
    with pytest.raises(ProtocolError, match="GaussianMixture"):
        call(MIX)


def test_denoising_and_score_losses_refuse_other_models():
    fvsbn = gm.autoregressive.FVSBN(4, rngs=nnx.Rngs(0))
    for loss in (L.edm_loss, L.vp_loss, L.ssm_loss):
        with pytest.raises(ProtocolError, match=f"{loss.__name__}.*FVSBN"):
            loss(fvsbn, X0, KEY)
    with pytest.raises(ProtocolError, match="dsm_loss.*AbstractFlowMapModel"):
        L.dsm_loss(_FlowMapStub(), X0, KEY, noise=L.LogNormal(), weighting=L.Constant())
    with pytest.raises(ProtocolError, match="exact_score_matching_loss"):
        L.exact_score_matching_loss(_FlowMapStub(), X0, KEY)
    with pytest.raises(ProtocolError, match="model"):
        L.edm_loss(object(), X0, KEY)
    with pytest.raises(ProtocolError, match="cfm_loss"):
        L.cfm_loss(object(), X0, KEY)


def test_path_loss_options_are_values():
    with pytest.raises(ArgumentTypeError, match="parameterization"):
        L.path_loss(_velocity_fn, X0, KEY, parameterization="eps")
    with pytest.raises(ArgumentTypeError, match="path"):
        L.path_loss(_velocity_fn, X0, KEY, path="linear")
    with pytest.raises(ArgumentTypeError, match="coupling"):
        L.ot_cfm_loss(_velocity_fn, X0, KEY, coupling="sinkhorn")
    eps_model = gm.models.PathModel(_velocity_fn, gm.paths.VP(), gm.denoisers.Eps())
    with pytest.raises(ArgumentError, match="VE"):
        L.path_loss(eps_model, X0, KEY, path=gm.paths.VE())
    with pytest.raises(ArgumentError, match="sigma_min"):
        L.path_loss(_velocity_fn, X0, KEY, parameterization=gm.denoisers.X0(), sigma_min=0.1)
    with pytest.raises(ArgumentError, match="reduction"):
        L.cfm_loss(_velocity_fn, X0, KEY, reduction="median")
    with pytest.raises(ArgumentError, match="epsilon"):
        L.SinkhornCoupling(epsilon=-1.0)
    for bad in (0, 2.5):
        with pytest.raises(ArgumentError, match="iterations"):
            L.SinkhornCoupling(iterations=bad)
    with pytest.raises(ArgumentError, match="tol"):
        L.ExactCoupling(tol=float("nan"))


def test_x0_parameterization_regresses_the_data():
    """A callable predicting X0() on the Cosine path has target x0: the identity x_t -> x0 is exact at
    t = 0 only, so the loss of the exact posterior mean is below that of x_t / a."""
    path = gm.paths.Cosine()

    def posterior_mean(x_t, t):
        return MIX.denoise(x_t / path.alpha(t)[:, None], path.sigma(t))

    kw = dict(path=path, parameterization=gm.denoisers.X0(), t_max=0.99)
    best = float(L.path_loss(posterior_mean, X0, KEY, **kw)[0])
    naive = float(L.path_loss(lambda x_t, t: x_t / path.alpha(t)[:, None], X0, KEY, **kw)[0])
    assert best < 0.5 * naive


# ---- learned loss weighting (EDM2) --------------------------------------------------------------------


def test_learned_weighting_matches_the_closed_form():
    model = _LearnedWeighting(jnp.asarray(0.8), jnp.asarray(0.3), jnp.asarray(-0.2))
    loss, metrics = jax.jit(lambda m: L.edm_loss(m, X0, KEY, sigma_data=0.5))(model)
    k_sigma, k_eps = jax.random.split(KEY)
    sigma = np.exp(-1.2 + 1.2 * np.asarray(jax.random.normal(k_sigma, (64,))))
    eps = np.asarray(jax.random.normal(k_eps, X0.shape))
    x = np.asarray(X0) + sigma[:, None] * eps
    err = np.mean((0.8 * x - np.asarray(X0)) ** 2, axis=1)
    w = (sigma**2 + 0.25) / (0.5 * sigma) ** 2
    u = 0.3 - 0.2 * np.log(sigma)
    np.testing.assert_allclose(float(loss), np.mean(np.exp(-u) * w * err + u), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["log_variance"]), np.mean(u), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["denoise_mse"]), np.mean(err), rtol=1e-5)


def test_learned_weighting_optimum_is_the_log_of_the_weighted_error():
    """With u constant, exp(-u) L + u is minimal at u = ln L (L the plain weighted loss)."""
    plain = float(L.edm_loss(lambda x, s: 0.8 * x, X0, KEY)[0])

    def loss_of_u(u0):
        return L.edm_loss(_LearnedWeighting(jnp.asarray(0.8), u0, jnp.asarray(0.0)), X0, KEY)[0]

    grad = jax.jit(jax.grad(loss_of_u))
    g = [float(grad(jnp.asarray(np.log(plain) + d, jnp.float32))) for d in (-0.5, 0.0, 0.5)]
    assert g[0] < 0 < g[2] and abs(g[1]) < 1e-5, g


# ---- numbers are traced: new values reuse the program -------------------------------------------------


def _traced_once(fn, *calls):
    traces = []

    @jax.jit
    def jitted(*args):
        traces.append(None)
        return fn(*args)

    values = [float(jitted(*args)) for args in calls]
    assert len(traces) == 1, f"{len(traces)} traces for {len(calls)} values"
    assert len(set(values)) == len(values), values  # the values did change the result
    return values


def test_loss_numbers_do_not_recompile():
    _traced_once(
        lambda c: L.ot_cfm_loss(_velocity_fn, X0, KEY, coupling=c)[0],
        (L.SinkhornCoupling(0.05),),
        (L.SinkhornCoupling(0.5),),
    )
    _traced_once(
        lambda sd, pm: L.edm_loss(MIX, X0, KEY, sigma_data=sd, p_mean=pm)[0],
        (0.5, -1.2),
        (0.7, -1.0),
    )
    _traced_once(lambda s: L.cfm_loss(_velocity_fn, X0, KEY, sigma_min=s)[0], (0.1,), (0.2,))
    net = _edm_model().net
    _traced_once(lambda m: L.edm_loss(m, X0, KEY)[0], (gm.models.EDMModel(net, 0.6),), (gm.models.EDMModel(net, 0.9),))


def test_exact_coupling_tol_is_traced():
    x0, x1 = X0[:8], jax.random.normal(KEY, (8, 2))
    traces = []

    @jax.jit
    def pair(coupling):
        traces.append(None)
        return coupling(KEY, x0, x1)

    a, b = pair(L.ExactCoupling(1e-4)), pair(L.ExactCoupling(1e-2))
    assert len(traces) == 1
    np.testing.assert_array_equal(np.sort(np.asarray(a), axis=0), np.sort(np.asarray(x1), axis=0))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(L.ExactCoupling(1e-4)(KEY, x0, x1)))
    assert np.asarray(b).shape == (8, 2)


# ---- the package's own source -------------------------------------------------------------------------


def _sources():
    return {p.name: ast.parse(p.read_text()) for p in sorted(LOSSES_DIR.glob("*.py"))}


def test_no_attribute_probes_or_string_dispatch_in_losses():
    for name, tree in _sources().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("hasattr", "getattr", "check_known"), f"{name}:{node.lineno}"
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and isinstance(c.value, str) for c in node.comparators
            ):
                raise AssertionError(f"string compare in {name}:{node.lineno}")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 80, f"{name}:{node.name} is over 80 lines"
