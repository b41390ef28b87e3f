"""Autoregressive models over binary data, checked against enumeration of all 2^n states.

The module runs with the "rbg" PRNG implementation: building the small test models then compiles several
times faster on CPU than with threefry (the library works with any key implementation).
"""

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

import genmodels as gm
from genmodels.samplers import _driver

A = gm.autoregressive


@pytest.fixture(autouse=True, scope="module")
def rbg_keys():
    old = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    make.cache_clear()
    yield
    make.cache_clear()
    jax.config.update("jax_default_prng_impl", old)


def chisquare_pvalue(observed: np.ndarray, probs: np.ndarray) -> float:
    """Pearson chi-square p-value of counts against probabilities, pooling cells expected < 5 into one."""
    expected = probs / probs.sum() * observed.sum()
    small = expected < 5
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if small.sum() == 0:
        obs, exp = obs[:-1], exp[:-1]
    return float(stats.chisquare(obs, exp).pvalue)


def all_states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)), np.float32)


@eqx.filter_jit
def perturbed(model, seed: int, scale: float = 1.0):
    """The model with N(0, scale^2) added to every parameter: a far-from-uniform distribution."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [p + scale * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys, strict=False)]
    return nnx.merge(graphdef, jax.tree.unflatten(tree, leaves), rest)


@eqx.filter_jit
def log_prob(model, x, **kwargs):
    return model.log_prob(x, **kwargs)


@functools.cache
def make(name: str, n: int, seed: int = 0, ordering: tuple | None = None):
    """Small models of each kind, perturbed; ``n`` bits (side**2 for PixelCNN). Built in one compiled call."""

    def build():
        rngs = nnx.Rngs(seed)
        if name == "fvsbn":
            m = A.FVSBN(n, ordering=ordering, rngs=rngs)
        elif name == "nade":
            m = A.NADE(n, 8, ordering=ordering, rngs=rngs)
        elif name == "made":
            m = A.MADE(n, (16, 16), ordering=ordering, direct=True, rngs=rngs)
        elif name == "made_oa":
            m = A.MADE(n, (16,), order_agnostic=True, num_masks=3, rngs=rngs)
            m.set_mask(1)
        elif name == "transformer":
            m = A.Transformer(n, 16, 2, 2, ordering=ordering, rngs=rngs)
        else:
            side = int(round(np.sqrt(n)))
            m = A.PixelCNN((side, side), 8, 2, 3, gated=name == "gated", rngs=rngs)
        return perturbed(m, seed + 100, 0.7)

    return eqx.filter_jit(build)()


def perm(n: int, seed: int) -> tuple:
    return tuple(int(i) for i in np.random.default_rng(seed).permutation(n))


MODELS = ["fvsbn", "nade", "made", "made_oa", "transformer", "pixelcnn", "gated"]
INCREMENTAL = ["fvsbn", "nade", "transformer"]
ORDERABLE = ("fvsbn", "nade", "made", "transformer")


def event(name, n):
    side = int(round(np.sqrt(n)))
    return (side, side) if name in ("pixelcnn", "gated") else (n,)


@pytest.mark.parametrize("name", MODELS)
def test_normalised_over_all_states(name):
    n = 9  # 3x3 for PixelCNN
    model = make(name, n, ordering=perm(n, 1) if name in ORDERABLE else None)
    x = all_states(n).reshape(-1, *event(name, n))
    lp = np.asarray(log_prob(model, x), np.float64)
    assert lp.shape == (2**n,)
    assert abs(np.exp(lp).sum() - 1.0) < 1e-5
    assert lp.max() - lp.min() > 1.0  # not the uniform distribution


@pytest.mark.parametrize("name", MODELS)
def test_autoregressive_property_by_gradients(name):
    n = 9
    model = make(name, n, ordering=perm(n, 1) if name in ORDERABLE else None)
    x = jax.random.bernoulli(jax.random.key(3), 0.5, (n,)).astype(jnp.float32)
    ev = event(name, n)
    jac = eqx.filter_jit(jax.jacrev(lambda v, m: m.logits(v.reshape(1, *ev)).reshape(n)))(
        x, model
    )  # jac[d, j] = dl_d / dx_j
    rank = np.argsort(np.asarray(model.ordering))
    later = rank[None, :] >= rank[:, None]  # x_j at or after d in the ordering
    assert np.all(np.asarray(jac)[later] == 0.0)
    assert np.mean(np.asarray(jac)[~later] != 0.0) > 0.5  # and the earlier ones are used


# The sampler's code path is shared: MADE covers full re-evaluation (as PixelCNN), FVSBN and NADE the
# incremental one (the Transformer's is checked against re-evaluation below), so the larger models are slow.
SLOW = pytest.mark.slow
FREQ_MODELS = ["fvsbn", "nade", "made", "made_oa"] + [
    pytest.param(m, marks=SLOW) for m in ("transformer", "pixelcnn", "gated")
]


@pytest.mark.parametrize("name", FREQ_MODELS)
def test_sample_frequencies_match_probabilities(name):
    n = 4
    model = make(name, n, seed=5)
    shape = (20_000, *event(name, n))
    sol = gm.solve(model, gm.samplers.Ancestral(), jax.random.key(0), shape)
    assert int(sol.nfe) == n
    x = np.asarray(sol.samples).reshape(-1, n)
    assert set(np.unique(x)) <= {0.0, 1.0}
    idx = (x * 2 ** np.arange(n - 1, -1, -1)).sum(1).astype(int)  # matches all_states' order
    observed = np.bincount(idx, minlength=2**n)
    p = np.exp(np.asarray(log_prob(model, all_states(n).reshape(-1, *event(name, n))), np.float64))
    assert chisquare_pvalue(observed, p) > 1e-3


def test_temperature_tempers_each_conditional():
    n, temp = 4, 2.0
    model = make("nade", n, seed=5)
    x = np.asarray(gm.sample(model, gm.samplers.Ancestral(temperature=temp), jax.random.key(1), (20_000, n)))
    observed = np.bincount((x * 2 ** np.arange(n - 1, -1, -1)).sum(1).astype(int), minlength=2**n)
    states = jnp.asarray(all_states(n))
    q = np.exp(np.asarray(A.bernoulli_log_prob(states, model.logits(states) / temp), np.float64))
    assert abs(q.sum() - 1) < 1e-5
    assert chisquare_pvalue(observed, q) > 1e-3


@pytest.mark.parametrize("name", INCREMENTAL)
def test_incremental_sampling_equals_naive(name):
    n = 9
    model = make(name, n, ordering=perm(n, 1))
    key = jax.random.key(11)
    inc = gm.solve(model, gm.samplers.Ancestral(temperature=3.0), key, (64, n))
    naive = gm.solve(model, gm.samplers.Ancestral(temperature=3.0, incremental=False), key, (64, n))
    np.testing.assert_array_equal(inc.samples, naive.samples)
    assert int(inc.nfe) == int(naive.nfe) == n
    assert len(np.unique(np.asarray(inc.samples), axis=0)) > 8  # a varied batch, not a trivial match


def test_made_ensemble_is_log_mean_exp_of_probabilities():
    n = 9
    model = make("made_oa", n)  # 3 masks, each with its own ordering
    x = jnp.asarray(all_states(n))
    per_mask = np.stack([np.asarray(log_prob(model, x, mask=jnp.asarray(k)), np.float64) for k in range(3)])
    ens = np.asarray(eqx.filter_jit(lambda m, x: m.ensemble_log_prob(x))(model, x), np.float64)
    np.testing.assert_allclose(ens, np.log(np.exp(per_mask).mean(0)), atol=1e-5)
    assert abs(np.exp(ens).sum() - 1.0) < 1e-5
    assert len({tuple(np.asarray(model.mask_ordering(k))) for k in range(3)}) > 1  # masks differ in ordering
    # a training step's log-prob uses the mask drawn from its key
    key = jax.random.key(3)
    train_lp = eqx.filter_jit(lambda m, x, k: m.training_log_prob(x, k))(model, x, key)
    np.testing.assert_allclose(train_lp, log_prob(model, x, mask=model.random_mask(key)), rtol=1e-6)


def test_completion_keeps_prefix_and_samples_the_conditional():
    n, k = 4, 2
    model = make("nade", n, seed=5, ordering=(2, 0, 3, 1))
    prefix = np.zeros((20_000, n), np.float32)
    prefix[:, [2, 0]] = [1.0, 0.0]  # the first k dims of the ordering: x_2 = 1, x_0 = 0
    out = np.asarray(A.complete(model, jax.random.key(2), prefix, k))
    np.testing.assert_array_equal(out[:, [2, 0]], prefix[:, [2, 0]])
    states = all_states(n)
    consistent = (states[:, 2] == 1) & (states[:, 0] == 0)
    p = np.exp(np.asarray(model.log_prob(states), np.float64))[consistent]
    observed = np.bincount((out * 2 ** np.arange(n - 1, -1, -1)).sum(1).astype(int), minlength=2**n)
    assert observed[~consistent].sum() == 0
    assert chisquare_pvalue(observed[consistent], p) > 1e-3


def test_completion_of_image_top_half_and_nfe():
    model = make("pixelcnn", 9)
    prefix = np.asarray(jax.random.bernoulli(jax.random.key(0), 0.5, (64, 3, 3)), np.float32)
    sampler = gm.samplers.Ancestral(prefix=prefix, num_known=3)  # the top row
    sol = gm.solve(model, sampler, jax.random.key(1), prefix.shape)
    np.testing.assert_array_equal(sol.samples[:, 0], prefix[:, 0])
    assert not np.array_equal(sol.samples[:, 1:], prefix[:, 1:])
    assert int(sol.nfe) == 9 - 3  # full-pass models skip the known pixels


def test_no_recompilation_across_keys_params_and_temperature():
    model = make("made", 4, seed=5)
    gm.sample(model, gm.samplers.Ancestral(), jax.random.key(0), (5, 4))
    size = _driver._solve._cached._cache_size()
    gm.sample(model, gm.samplers.Ancestral(), jax.random.key(1), (5, 4))
    gm.sample(perturbed(model, 3), gm.samplers.Ancestral(temperature=0.5), jax.random.key(2), (5, 4))
    assert _driver._solve._cached._cache_size() == size


def test_bad_inputs_raise_clear_errors():
    model = make("nade", 4, seed=5)
    with pytest.raises(ValueError, match="binary"):
        model.log_prob(jnp.full((2, 4), 0.5))
    with pytest.raises(eqx.EquinoxRuntimeError, match="binary"):
        eqx.filter_jit(model.log_prob)(jnp.full((2, 4), 2.0)).block_until_ready()
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        model.log_prob(jnp.zeros((2, 5)))
    with pytest.raises(ValueError, match="batch axis"):
        model.log_prob(jnp.zeros((4,)))
    with pytest.raises(ValueError, match="permutation"):
        A.NADE(4, ordering=[0, 1, 1, 3], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="permutation"):
        A.MADE(3, ordering=[0, 1], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"shape must be \(batch, 4\)"):
        gm.sample(model, gm.samplers.Ancestral(), jax.random.key(0), (4, 7))
    with pytest.raises(ValueError, match="noise= is meaningless"):
        gm.sample(model, gm.samplers.Ancestral(), jax.random.key(0), (4, 4), noise=jnp.zeros((4, 4)))
    with pytest.raises(ValueError, match="temperature"):
        gm.samplers.Ancestral(temperature=0.0)
    with pytest.raises(TypeError, match="autoregressive"):
        gm.sample(lambda x, s: x, gm.samplers.Ancestral(), jax.random.key(0), (4, 4))
    with pytest.raises(ValueError, match="prefix must be binary"):
        A.complete(model, jax.random.key(0), jnp.full((2, 4), 0.3), 2)
    with pytest.raises(ValueError, match=r"\(height, width\)"):
        A.PixelCNN(9, rngs=nnx.Rngs(0))


def test_binary_npz_loader(tmp_path):
    from genmodels.data import _binary

    good = {k: np.eye(3, dtype=np.float32) for k in ("train_data", "valid_data", "test_data")}
    np.savez(tmp_path / "ok.npz", **good)
    splits = _binary.load_binary_npz(tmp_path / "ok.npz")
    assert splits.train.shape == (3, 3) and "3 binary dims" in splits.description
    np.savez(tmp_path / "missing.npz", train_data=good["train_data"])
    with pytest.raises(ValueError, match="missing array"):
        _binary.load_binary_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "grey.npz", **{**good, "valid_data": np.full((2, 3), 0.5)})
    with pytest.raises(ValueError, match="binary"):
        _binary.load_binary_npz(tmp_path / "grey.npz")
    with pytest.raises(FileNotFoundError):
        _binary.load_binary_npz(tmp_path / "nope.npz")
