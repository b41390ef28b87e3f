"""Issue 9's bad inputs to the library, and those of the earlier issues: each ends in a clear error.

Every case is one row of :data:`CASES`: a call, the error it must raise (a ``gm.errors`` class, which is
also a ``ValueError`` / ``TypeError`` / ``FloatingPointError``), and words its message must hold, the
argument it names first. Every error is also checked to be a ``gm.errors.GenmodelsError``, so one
``except`` catches them all. The ids are the case names of ``/work/notes/issue9_cases.md``. Run-directory,
data-file and experiment cases are in ``test_bad_inputs_files.py``; random inputs in ``test_properties.py``.

Cost: construction-time refusals need no compile; the few that sample use one (2, 2) batch and short
schedules, so the file runs in a few seconds.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import genmodels as gm
from genmodels.errors import (
    ArgumentError,
    ArgumentTypeError,
    GenmodelsError,
    NonFiniteSampleError,
    ProtocolError,
    RuntimeCheckError,
    ScheduleError,
)

KEY = jax.random.key(0)
NAN, INF = math.nan, math.inf
S4 = gm.schedules.karras(4)
MIX = gm.targets.eight_gaussians()


def gaussian(x, sigma):
    """Exact denoiser of N(0, I) data: E[x0 | x] = x / (1 + sigma^2) (a plain callable, any shape)."""
    return x / (1 + sigma**2)


def _euler():
    return gm.samplers.Euler(S4)


def _fvsbn():
    return gm.autoregressive.FVSBN(6, rngs=nnx.Rngs(0))


def _edm_model():
    return gm.models.EDMModel(gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0)))


@dataclasses.dataclass(frozen=True)
class Case:
    """``call()`` must raise ``error`` with every one of ``words`` in its message."""

    id: str
    call: Callable[[], Any]
    error: type[BaseException]
    words: tuple[str, ...]


CASES = [
    # ---- issue 9, silent wrong results ---------------------------------------------------------------
    Case("heun-churn-negative", lambda: gm.samplers.Heun(S4, s_churn=-5.0), ArgumentError, ("s_churn", ">= 0", "-5")),
    Case("heun-churn-nan", lambda: gm.samplers.Heun(S4, s_churn=NAN), ArgumentError, ("s_churn", "finite")),
    Case("heun-noise-negative", lambda: gm.samplers.Heun(S4, s_noise=-1.0), ArgumentError, ("s_noise",)),
    Case("ddim-eta-negative", lambda: gm.samplers.DDIM(S4, eta=-0.5), ArgumentError, ("eta", ">= 0")),
    Case("ancestral-eta-nan", lambda: gm.samplers.EulerAncestral(S4, eta=NAN), ArgumentError, ("eta",)),
    Case("dpm3m-noise-inf", lambda: gm.samplers.DPMSolverPP3MSDE(S4, s_noise=INF), ArgumentError, ("s_noise",)),
    Case("pc-snr-zero", lambda: gm.samplers.PredictorCorrector(S4, snr=0.0), ArgumentError, ("snr",)),
    Case(
        "pc-corrector-steps-float",
        lambda: gm.samplers.PredictorCorrector(S4, corrector_steps=1.5),
        ArgumentError,
        ("corrector_steps",),
    ),  # fmt: skip
    Case(
        "langevin-step-size-negative",
        lambda: gm.samplers.AnnealedLangevin(S4, step_size=-1e-5),
        ArgumentError,
        ("step_size",),
    ),  # fmt: skip
    Case(
        "langevin-steps-per-level-zero",
        lambda: gm.samplers.AnnealedLangevin(S4, steps_per_level=0),
        ArgumentError,
        ("steps_per_level", ">= 1"),
    ),  # fmt: skip
    Case("ode-rtol-negative", lambda: gm.samplers.ODE(rtol=-1e-5), ArgumentError, ("rtol",)),
    Case("ode-max-steps-zero", lambda: gm.samplers.ODE(max_steps=0), ArgumentError, ("max_steps",)),
    Case(
        "cfm-loss-on-edm-model",
        lambda: gm.losses.cfm_loss(_edm_model(), jnp.zeros((4, 2)), KEY),
        ProtocolError,
        ("cfm_loss", "AbstractPathModel", "EDMModel"),
    ),  # fmt: skip
    Case(
        "path-loss-on-edm-model",
        lambda: gm.losses.path_loss(_edm_model(), jnp.zeros((4, 2)), KEY),
        ProtocolError,
        ("AbstractPathModel",),
    ),  # fmt: skip
    Case("karras-rho-nan", lambda: gm.schedules.karras(4, rho=NAN), ArgumentError, ("rho", "finite")),
    Case("karras-rho-zero", lambda: gm.schedules.karras(4, rho=0), ArgumentError, ("rho", "> 0")),
    Case("karras-rho-negative", lambda: gm.schedules.karras(4, rho=-7.0), ArgumentError, ("rho",)),
    Case(
        "karras-min-above-max",
        lambda: gm.schedules.karras(4, sigma_min=10.0, sigma_max=1.0),
        ArgumentError,
        ("sigma_min", "sigma_max"),
    ),  # fmt: skip
    Case(
        "log-uniform-min-negative", lambda: gm.schedules.log_uniform(4, sigma_min=-1.0), ArgumentError, ("sigma_min",)
    ),  # fmt: skip
    Case("ve-sigma-min-negative", lambda: gm.paths.VE(sigma_min=-1.0), ArgumentError, ("sigma_min", "> 0")),
    Case(
        "ve-min-above-max",
        lambda: gm.paths.VE(sigma_min=10.0, sigma_max=1.0),
        ArgumentError,
        ("sigma_min", "sigma_max", "10"),
    ),  # fmt: skip
    Case("vp-beta-nan", lambda: gm.paths.VP(beta_min=NAN), ArgumentError, ("beta_min",)),
    Case(
        "float16-schedule-beyond-range",
        lambda: gm.sample(
            gaussian,
            gm.samplers.Euler(gm.schedules.karras(4, sigma_max=300.0)),
            KEY,
            (2, 2),
            noise=jnp.ones((2, 2), jnp.float16),
        ),
        ScheduleError,
        ("float16", "127.9", "300"),
    ),  # fmt: skip
    # ---- issue 9, errors without context -------------------------------------------------------------
    Case(
        "sample-fvsbn-with-euler",
        lambda: gm.sample(_fvsbn(), _euler(), KEY, (2, 6)),
        ProtocolError,
        ("model", "FVSBN", "Ancestral"),
    ),  # fmt: skip
    Case("log-prob-fvsbn", lambda: gm.log_prob(_fvsbn(), jnp.zeros((2, 6)), KEY), ProtocolError, ("model", "FVSBN")),
    Case("sample-none", lambda: gm.sample(None, _euler(), KEY, (2, 2)), ProtocolError, ("model", "None")),
    Case("log-prob-none", lambda: gm.log_prob(None, jnp.zeros((2, 2)), KEY), ProtocolError, ("model",)),
    Case(
        "one-argument-denoiser",
        lambda: gm.sample(lambda x: x, _euler(), KEY, (2, 2)),
        ProtocolError,
        ("model", "D(x, sigma)"),
    ),  # fmt: skip
    Case(
        "batch-of-typed-keys",
        lambda: gm.sample(MIX, _euler(), jax.random.split(KEY, 3), (2, 2)),
        ArgumentError,
        ("key", "batch of keys", "(3,)"),
    ),  # fmt: skip
    Case(
        "batch-of-raw-keys",
        lambda: gm.sample(MIX, _euler(), jax.random.split(jax.random.PRNGKey(0), 3), (2, 2)),
        ArgumentError,
        ("key", "(3,)"),
    ),  # fmt: skip
    Case(
        "log-prob-batch-of-keys",
        lambda: gm.log_prob(MIX, jnp.zeros((2, 2)), jax.random.split(KEY, 2)),
        ArgumentError,
        ("key",),
    ),  # fmt: skip
    Case(
        "target-denoise-sigma-wrong-length",
        lambda: MIX.denoise(jnp.zeros((3, 2)), jnp.ones(5)),
        ArgumentError,
        ("sigma", "(3,)", "(5,)"),
    ),  # fmt: skip
    Case(
        "model-denoise-sigma-wrong-length",
        lambda: gm.models.denoise(MIX, jnp.zeros((3, 2)), jnp.ones(5)),
        ArgumentError,
        ("sigma", "(3,)"),
    ),  # fmt: skip
    Case(
        "made-num-masks-zero",
        lambda: gm.autoregressive.MADE(6, hidden=(8,), num_masks=0, rngs=nnx.Rngs(0)),
        ArgumentError,
        ("num_masks", ">= 1"),
    ),  # fmt: skip
    # ---- issue 2 (samplers): shapes, dtypes, schedules, noise, options, wrong model output ---------------
    Case("shape-zero", lambda: gm.sample(gaussian, _euler(), KEY, (0, 2)), ArgumentError, ("shape", "(0, 2)")),
    Case("shape-negative", lambda: gm.sample(gaussian, _euler(), KEY, (-1, 2)), ArgumentError, ("shape",)),
    Case("shape-float", lambda: gm.sample(gaussian, _euler(), KEY, (2.0, 2)), ArgumentError, ("shape",)),
    Case("shape-string", lambda: gm.sample(gaussian, _euler(), KEY, "2x2"), ArgumentError, ("shape",)),
    Case("shape-empty", lambda: gm.sample(gaussian, _euler(), KEY, ()), ArgumentError, ("shape",)),
    Case("key-int", lambda: gm.sample(gaussian, _euler(), 0, (2, 2)), ArgumentTypeError, ("key", "PRNG")),
    Case("sampler-string", lambda: gm.sample(gaussian, "euler", KEY, (2, 2)), ArgumentTypeError, ("sampler",)),
    Case(
        "sampler-class-not-instance",
        lambda: gm.sample(gaussian, gm.samplers.Euler, KEY, (2, 2)),
        ArgumentTypeError,
        ("sampler",),
    ),  # fmt: skip
    Case(
        "schedule-ascending",
        lambda: gm.samplers.Euler(jnp.array([0.0, 1.0, 2.0])),
        ScheduleError,
        ("sigmas", "ascending"),
    ),  # fmt: skip
    Case(
        "schedule-not-monotone",
        lambda: gm.samplers.Heun(jnp.array([3.0, 1.0, 2.0, 0.0])),
        ScheduleError,
        ("sigmas", "entry 2"),
    ),  # fmt: skip
    Case(
        "schedule-negative",
        lambda: gm.samplers.Euler(jnp.array([2.0, 1.0, -1.0])),
        ScheduleError,
        ("sigmas", "non-negative", "-1"),
    ),  # fmt: skip
    Case("schedule-nan", lambda: gm.samplers.Euler(jnp.array([2.0, NAN, 0.0])), ScheduleError, ("sigmas", "NaN")),
    Case(
        "schedule-inf-inside", lambda: gm.samplers.Euler(jnp.array([3.0, INF, 0.0])), ScheduleError, ("sigmas", "inf")
    ),  # fmt: skip
    Case("schedule-2d", lambda: gm.samplers.Euler(jnp.ones((2, 2))), ScheduleError, ("sigmas", "1-D")),
    Case("schedule-one-entry", lambda: gm.samplers.Euler(jnp.ones((1,))), ScheduleError, ("sigmas", "2 entries")),
    Case("schedule-none", lambda: gm.samplers.Euler(None), ArgumentTypeError, ("sigmas",)),
    Case("schedule-string", lambda: gm.samplers.DDIM("karras"), ArgumentTypeError, ("sigmas",)),
    Case(
        "schedule-complex",
        lambda: gm.samplers.Euler(jnp.array([2.0 + 1j, 0.0])),
        ArgumentTypeError,
        ("sigmas", "complex"),
    ),  # fmt: skip
    Case(
        "inf-start-without-limit",
        lambda: gm.sample(gaussian, gm.samplers.Euler(jnp.array([INF, 1.0, 0.0])), KEY, (2, 2)),
        ArgumentError,
        ("inf", "at_infinity"),
    ),  # fmt: skip
    Case(
        "inf-start-told-finite",
        lambda: gm.samplers.Euler(jnp.array([INF, 1.0, 0.0]), start_at_infinity=False),
        ArgumentError,
        ("start_at_infinity",),
    ),  # fmt: skip
    Case(
        "noise-nan",
        lambda: gm.sample(gaussian, _euler(), KEY, (2, 2), noise=jnp.full((2, 2), NAN)),
        RuntimeCheckError,
        ("noise", "NaN"),
    ),  # fmt: skip
    Case(
        "noise-wrong-shape",
        lambda: gm.sample(gaussian, _euler(), KEY, (2, 2), noise=jnp.ones((2, 3))),
        ArgumentError,
        ("noise", "(2, 2)", "(2, 3)"),
    ),  # fmt: skip
    Case(
        "noise-int-dtype",
        lambda: gm.sample(gaussian, _euler(), KEY, (2, 2), noise=jnp.ones((2, 2), jnp.int32)),
        ArgumentTypeError,
        ("noise", "floating"),
    ),  # fmt: skip
    Case("unknown-option", lambda: gm.samplers.Euler(S4, churn=1.0), TypeError, ("churn",)),
    Case("pc-unknown-norms", lambda: gm.samplers.PredictorCorrector(S4, norms="rows"), ArgumentError, ("norms",)),
    Case(
        "model-output-wrong-shape",
        lambda: gm.sample(lambda x, s: x[:, :1], _euler(), KEY, (2, 2)),
        ArgumentError,
        ("model", "(2, 2)", "(2, 1)"),
    ),  # fmt: skip
    Case(
        "model-output-tuple",
        lambda: gm.sample(lambda x, s: (x, x), _euler(), KEY, (2, 2)),
        ArgumentError,
        ("model", "tuple"),
    ),  # fmt: skip
    Case("mixture-wrong-dim", lambda: gm.sample(MIX, _euler(), KEY, (2, 3)), ArgumentError, ("x", "2")),
    Case("log-prob-nan-x", lambda: gm.log_prob(gaussian, jnp.full((2, 2), NAN), KEY), ArgumentError, ("x", "NaN")),
    Case(
        "log-prob-int-x",
        lambda: gm.log_prob(gaussian, jnp.zeros((2, 2), jnp.int32), KEY),
        ArgumentTypeError,
        ("x", "floating"),
    ),  # fmt: skip
    Case("log-prob-1d-x", lambda: gm.log_prob(gaussian, jnp.zeros((3,)), KEY), ArgumentError, ("x", "(3,)")),
    # ---- issue 3 (training): config values, data shapes, non-finite data --------------------------------
    Case(
        "dataset-leading-dims-differ",
        lambda: gm.data.ArrayDataset((np.zeros((4, 2)), np.zeros(3)), batch_size=2),
        ArgumentError,
        ("leading",),
    ),  # fmt: skip
    Case(
        "dataset-nan",
        lambda: gm.data.ArrayDataset(np.full((4, 2), NAN), batch_size=2),
        ArgumentError,
        ("NaN", "leaf 0"),
    ),  # fmt: skip
    Case(
        "dataset-batch-too-large",
        lambda: gm.data.ArrayDataset(np.zeros((4, 2)), batch_size=8),
        ArgumentError,
        ("batch_size=8", "N=4"),
    ),  # fmt: skip
    Case(
        "dataset-batch-zero",
        lambda: gm.data.ArrayDataset(np.zeros((4, 2)), batch_size=0),
        ArgumentError,
        ("batch_size",),
    ),  # fmt: skip
    Case(
        "loss-nan-data", lambda: gm.losses.edm_loss(_edm_model(), jnp.full((4, 2), NAN), KEY), ArgumentError, ("NaN",)
    ),  # fmt: skip
    Case(
        "fit-model-not-nnx",
        lambda: gm.train.fit(object(), gm.losses.edm_loss, gm.data.ArrayDataset(np.zeros((4, 2)), 2), key=KEY, steps=1),
        ArgumentTypeError,
        ("model", "nnx.Module"),
    ),  # fmt: skip
    Case(
        "fit-steps-negative",
        lambda: gm.train.fit(
            _edm_model(), gm.losses.edm_loss, gm.data.ArrayDataset(np.zeros((4, 2), np.float32), 2), key=KEY, steps=-1
        ),
        ArgumentError,
        ("steps", ">= 0"),
    ),  # fmt: skip
    Case(
        "fit-batch-of-keys",
        lambda: gm.train.fit(
            _edm_model(),
            gm.losses.edm_loss,
            gm.data.ArrayDataset(np.zeros((4, 2), np.float32), 2),
            key=jax.random.split(KEY, 2),
            steps=1,
        ),
        ArgumentError,
        ("key",),
    ),  # fmt: skip
    Case("adamw-negative-lr", lambda: gm.train.adamw(-1e-3), ArgumentError, ("learning_rate",)),
    Case("adamw-lr-string", lambda: gm.train.adamw("cosine"), ArgumentTypeError, ("learning_rate",)),
    Case("ema-decay-one", lambda: gm.train.EMA(1.0), ArgumentError, ("decay",)),
    Case(
        "checkpoints-without-run-dir",
        lambda: gm.train.fit(
            _edm_model(),
            gm.losses.edm_loss,
            gm.data.ArrayDataset(np.zeros((4, 2), np.float32), 2),
            key=KEY,
            steps=1,
            checkpoints=gm.train.Checkpoints(),
        ),
        ArgumentError,
        ("checkpoints", "run_dir"),
    ),  # fmt: skip
    Case(
        "mlp-labels-unconditional",
        lambda: gm.nets.MLP(2, 8, 2, rngs=nnx.Rngs(0))(jnp.zeros((2, 2)), jnp.ones(2), jnp.array([0, 1])),
        ArgumentError,
        ("labels", "num_classes"),
    ),  # fmt: skip
    Case(
        "mlp-int-input",
        lambda: gm.nets.MLP(2, 8, 2, rngs=nnx.Rngs(0))(jnp.zeros((2, 2), jnp.int32), jnp.ones(2)),
        ArgumentTypeError,
        ("x", "floating"),
    ),  # fmt: skip
    # ---- issue 4 (autoregressive): non-binary data, wrong length, orderings ----------------------------
    Case(
        "log-prob-non-binary", lambda: _fvsbn().log_prob(jnp.full((2, 6), 0.5)), ArgumentError, ("x", "binary", "0.5")
    ),  # fmt: skip
    Case(
        "log-prob-wrong-length",
        lambda: _fvsbn().log_prob(jnp.zeros((2, 5))),
        ArgumentError,
        ("x", "(batch, 6)", "(2, 5)"),
    ),  # fmt: skip
    Case("log-prob-missing-batch-axis", lambda: _fvsbn().log_prob(jnp.zeros(6)), ArgumentError, ("x[None]",)),
    Case(
        "ordering-not-permutation",
        lambda: gm.autoregressive.MADE(4, hidden=(8,), ordering=jnp.array([0, 0, 1, 2]), rngs=nnx.Rngs(0)),
        ArgumentError,
        ("ordering", "permutation", "[0, 0, 1, 2]"),
    ),  # fmt: skip
    Case(
        "ordering-wrong-length",
        lambda: gm.autoregressive.FVSBN(4, ordering=jnp.arange(3), rngs=nnx.Rngs(0)),
        ArgumentError,
        ("ordering", "range(4)"),
    ),  # fmt: skip
    Case(
        "ancestral-on-denoiser",
        lambda: gm.sample(MIX, gm.samplers.Ancestral(), KEY, (2, 2)),
        ProtocolError,
        ("AbstractAutoregressiveModel",),
    ),  # fmt: skip
    Case(
        "ancestral-temperature-zero", lambda: gm.samplers.Ancestral(temperature=0.0), ArgumentError, ("temperature",)
    ),  # fmt: skip
    Case(
        "mixture-negative-weights",
        lambda: gm.targets.GaussianMixture(jnp.array([1.0, -1.0]), jnp.zeros((2, 2)), 1.0),
        ArgumentError,
        ("weights",),
    ),  # fmt: skip
    Case(
        "mixture-zero-std",
        lambda: gm.targets.GaussianMixture(jnp.ones(2), jnp.zeros((2, 2)), 0.0),
        ArgumentError,
        ("stds",),
    ),  # fmt: skip
]

FOREIGN_OK = {"unknown-option"}  # Python's own TypeError for an unknown keyword, which names it


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_a_clear_error(case):
    with pytest.raises(case.error) as err:
        case.call()
    message = str(err.value)
    missing = [w for w in case.words if w not in message]
    assert not missing, f"{case.id}: message lacks {missing}: {message}"
    if case.id not in FOREIGN_OK:
        assert isinstance(err.value, GenmodelsError), f"{case.id}: {type(err.value).__mro__}"
        assert "Above is the stack" not in message.split("\n")[0]


SAMPLER_SIDE = [  # sampler-side cases: ragged schedules, options that are not numbers, Ancestral's shapes
    Case("schedule-ragged-list", lambda: gm.samplers.Euler([[1.0, 2.0], [3.0]]), ArgumentTypeError, ("sigmas",)),
    Case("option-string", lambda: gm.samplers.Heun(S4, s_churn="x"), ArgumentTypeError, ("s_churn",)),
    Case(
        "ancestral-wrong-shape",
        lambda: gm.sample(_fvsbn(), gm.samplers.Ancestral(), KEY, (2, 5)),
        ArgumentError,
        ("shape", "6"),
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", SAMPLER_SIDE, ids=lambda c: c.id)
def test_sampler_side_bad_input_is_a_clear_error(case):
    test_bad_input_is_a_clear_error(case)


# ---- silent NaN: the driver names the first bad step, for every fixed-step sampler --------------------

STEPS = jnp.array([4.0, 2.0, 1.0, 0.5, 0.0])


def nan_below(x, sigma):
    """The exact N(0, I) denoiser, except NaN for sigma < 1.5 (from the third level of STEPS on)."""
    return jnp.where(sigma < 1.5, jnp.nan, gaussian(x, sigma))


@pytest.mark.parametrize(
    "cls, step",
    [(gm.samplers.Euler, 2), (gm.samplers.Heun, 1), (gm.samplers.DPMSolverPP2M, 2)],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_nan_model_names_its_first_bad_step(cls, step):
    """Euler, Heun and DPM-Solver++(2M) gave all-NaN samples silently; Heun's corrector reads sigma_next."""
    with pytest.raises(NonFiniteSampleError) as err:
        gm.sample(nan_below, cls(STEPS), KEY, (2, 2))
    assert err.value.step == step and err.value.sigma == float(STEPS[step])
    assert f"step {step}" in str(err.value) and f"sigma {float(STEPS[step]):g}" in str(err.value)
    assert isinstance(err.value, FloatingPointError) and isinstance(err.value, GenmodelsError)


# ---- to fix rather than refuse ---------------------------------------------------------------------------


def test_numpy_integers_are_accepted_where_ints_are():
    """A numpy.int64 batch size (e.g. from len() of an array, or arithmetic on one) was refused by gm.sample."""
    n = np.int64(3)
    x = gm.sample(gaussian, gm.samplers.Euler(gm.schedules.karras(np.int64(3))), KEY, (n, np.int32(2)))
    assert x.shape == (3, 2) and bool(jnp.all(jnp.isfinite(x)))
    assert gm.sample(_fvsbn(), gm.samplers.Ancestral(), KEY, (n, 6)).shape == (3, 6)
    made = gm.autoregressive.MADE(np.int64(6), hidden=(np.int64(8),), num_masks=np.int64(2), rngs=nnx.Rngs(0))
    assert made.n_dims == 6


def test_runtime_check_leads_with_what_went_wrong():
    """A check inside the compiled program surfaces as RuntimeCheckError (also equinox's runtime error, so a
    RuntimeError) whose first line is the check's own message, not equinox's preamble."""
    with pytest.raises(RuntimeCheckError) as err:
        gm.sample(gaussian, _euler(), KEY, (2, 2), noise=jnp.full((2, 2), jnp.inf))
    first = str(err.value).splitlines()[0]
    assert first.startswith("noise contains NaN or inf"), first
    assert isinstance(err.value, RuntimeError) and isinstance(err.value, eqx_runtime_error())
    assert err.value.__cause__ is not None  # equinox's report, with the stack inside the program


def eqx_runtime_error() -> type:
    import equinox as eqx

    return eqx.EquinoxRuntimeError


def test_error_hierarchy():
    """One hierarchy users can catch, each class also the built-in exception a Python user expects."""
    e = gm.errors
    for cls, builtin in [(e.ArgumentError, ValueError), (e.ScheduleError, ValueError), (e.ArgumentTypeError, TypeError),
                         (e.ProtocolError, TypeError), (e.RunDirectoryError, ValueError),
                         (e.RunExistsError, FileExistsError), (e.CheckpointError, ValueError),
                         (e.RuntimeCheckError, RuntimeError), (e.NonFiniteLossError, FloatingPointError),
                         (e.NonFiniteSampleError, FloatingPointError)]:  # fmt: skip
        assert issubclass(cls, e.GenmodelsError) and issubclass(cls, builtin), cls
    assert issubclass(gm.data.DataFormatError, e.GenmodelsError)


ALLOWED_PLAIN_RAISES = {
    "train/_files.py",  # the JSON encoder's default hook must raise TypeError (json's protocol)
}


def _plain_raises(root: pathlib.Path) -> dict[str, list[int]]:
    """Files under ``root`` with ``raise ValueError(...)`` / ``raise TypeError(...)``: the library raises
    ``gm.errors`` classes instead (themselves ValueError / TypeError subclasses)."""
    found: dict[str, list[int]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id in ("ValueError", "TypeError"):
                    found.setdefault(str(path.relative_to(root)), []).append(node.lineno)
    return found


GENMODELS = pathlib.Path(gm.__file__).parent


def test_the_library_raises_its_own_errors():
    found = {f: lines for f, lines in _plain_raises(GENMODELS).items()
             if f not in ALLOWED_PLAIN_RAISES and not f.startswith("samplers/")}  # fmt: skip
    assert not found, found


def test_the_samplers_raise_their_own_errors():
    assert not _plain_raises(GENMODELS / "samplers"), _plain_raises(GENMODELS / "samplers")
