"""Property-based tests of the public API (hypothesis): random shapes, dtypes, schedules (descending or not,
with NaN / inf / negative / huge entries), sampler options, model outputs and data.

The property, for every call: **a clear error, or a good result**. A clear error is a ``gm.errors`` error
(so also a ``ValueError`` / ``TypeError`` / ``RuntimeError`` / ``FloatingPointError``) whose message names
the argument (or, for a non-finite step, the step); a good result has the requested shape and dtype and is
finite. Never NaN samples, never a foreign exception (a bare ``ZeroDivisionError``, JAX's or numpy's own
message).

Cost: each new shape, dtype, schedule length or static option is one compile, so the strategies draw them
from small fixed sets (compiles are cached) and numbers (schedule values, options, thresholds) are traced.
Hypothesis profiles (``tests/conftest.py``): the default suite runs each property under the loaded profile,
``ci`` unless ``GENMODELS_HYPOTHESIS_PROFILE`` says otherwise (10 examples, derandomized, no deadline);
the ``slow`` variants (``-m slow``) run each property under the ``slow`` profile (100 random examples).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import genmodels as gm
from genmodels.errors import GenmodelsError, NonFiniteSampleError

KEY = jax.random.key(0)
NAN, INF = math.nan, math.inf

SHAPES = [(2, 2), (3,), (2, 1, 2)]  # the requested sample shapes: a small fixed set (each is a compile)
DTYPES = [None, jnp.float32, jnp.float16, jnp.bfloat16]  # the noise's dtype (None: no noise given, float32)
SPECIAL = [NAN, INF, -INF, -1.0, 0.0, 1e-30, 1e30]  # numbers that break things
STEP_SAMPLERS = sorted(
    (c for c in vars(gm.samplers).values()
     if isinstance(c, type) and issubclass(c, gm.samplers.AbstractStepSampler) and not inspect.isabstract(c)),
    key=lambda c: c.__name__,
)  # fmt: skip


def run_property(prop: Callable, strategies: dict, profile: str | None = None) -> None:
    """Run ``prop`` under hypothesis with ``strategies``: the loaded profile, or the named one."""
    test = given(**strategies)(prop)
    (settings(settings.get_profile(profile))(test) if profile else test)()


def clear_or_good(call: Callable, names: Sequence[str], shape=None, dtype=None, check=None):
    """The property: ``call()`` raises a gm.errors error naming one of ``names``, or returns a finite array
    (of ``shape`` and ``dtype`` when given; ``check(result)`` for more). Returns the result, or None."""
    try:
        out = call()
    except GenmodelsError as err:
        message = str(err)
        event(f"error: {type(err).__name__}")
        assert any(n in message for n in names), f"{type(err).__name__} names none of {list(names)}: {message}"
        assert not message.startswith("Above is the stack"), message
        return None
    event("result")
    arr = jnp.asarray(out)
    if shape is not None:
        assert arr.shape == tuple(shape), (arr.shape, shape)
    if dtype is not None:
        assert arr.dtype == jnp.dtype(dtype), (arr.dtype, dtype)
    assert bool(jnp.all(jnp.isfinite(arr.astype(jnp.float32)))), f"non-finite result without an error: {arr}"
    if check is not None:
        check(out)
    return out


def gaussian(x, sigma):
    """Exact denoiser of N(0, I) data, for any shape; sigma a scalar or one per row."""
    return x / (1 + gm.denoisers.rows(sigma, x) ** 2) if jnp.ndim(sigma) else x / (1 + sigma**2)


class BadBelow(eqx.Module):
    """The exact N(0, I) denoiser, except that it returns ``bad`` (NaN, inf or huge) for sigma < threshold.
    Both numbers are traced leaves: new values reuse the compiled program."""

    threshold: jax.Array
    bad: jax.Array

    def __call__(self, x, sigma):
        hit = jnp.any(jnp.asarray(sigma) < self.threshold)
        return jnp.where(hit, jnp.full_like(x, self.bad), gaussian(x, sigma))


# ---- strategies --------------------------------------------------------------------------------------


@st.composite
def schedules(draw, lengths=(3, 5)) -> np.ndarray:
    """A schedule of 3 or 5 entries: a descending grid (from 1 to 1e30 at the top, with or without a final
    0), or one broken: reversed, a repeated entry, an inf start, or a NaN / inf / negative / huge entry."""
    n = draw(st.sampled_from(lengths))
    top = draw(st.sampled_from([1.0, 10.0, 80.0, 300.0, 1e6, 1e30]))
    final_zero = draw(st.booleans())
    values = list(np.geomspace(top, top * 1e-3, n - 1 if final_zero else n)) + ([0.0] if final_zero else [])
    how = draw(st.sampled_from(["valid", "valid", "valid", "reversed", "repeat", "inf-start", "special"]))
    if how == "reversed":
        values = values[::-1]
    elif how == "repeat":
        i = draw(st.integers(0, n - 2))
        values[i + 1] = values[i]
    elif how == "inf-start":
        values[0] = INF
    elif how == "special":
        values[draw(st.integers(0, n - 1))] = draw(st.sampled_from(SPECIAL))
    event(f"schedule: {how}")
    return np.asarray(values, np.float32)


def option_values(cls: type) -> dict[str, st.SearchStrategy]:
    """A strategy per option of sampler ``cls`` (its dataclass fields beside the schedule): numbers for the
    float options (valid ones, and NaN / inf / negative / huge), counts for the int ones."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in ("sigmas", "start_at_infinity") or f.default is dataclasses.MISSING:
            continue
        if isinstance(f.default, bool) or isinstance(f.default, str):
            continue
        if isinstance(f.default, int):
            out[f.name] = st.sampled_from([1, 2, np.int64(2), 0, -1])
        else:
            out[f.name] = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.sampled_from(SPECIAL))
    return out


@st.composite
def step_samplers(draw, schedule=schedules()) -> tuple[type, np.ndarray, dict]:
    cls = draw(st.sampled_from(STEP_SAMPLERS))
    strategies = option_values(cls)
    chosen = draw(st.sets(st.sampled_from(sorted(strategies)), max_size=2)) if strategies else set()
    options = {k: draw(strategies[k]) for k in sorted(chosen)}
    if cls is gm.samplers.AnnealedLangevin:  # its default step size suits a 0.002 bottom level only
        options.setdefault("step_size", draw(st.sampled_from([1e-4, 1e-2, 1.0])))
        options["steps_per_level"] = min(options.get("steps_per_level", 3), 3)
    return cls, draw(schedule), options


NAMES_SAMPLE = ("sigmas", "noise", "shape", "step", "start_at_infinity", "at_infinity", "first noise level")


# ---- properties -------------------------------------------------------------------------------------


def prop_sample(sampler, shape, dtype):
    """gm.sample with a random fixed-step sampler, options, schedule, shape and noise dtype."""
    cls, sigmas, options = sampler
    note(f"{cls.__name__}({sigmas.tolist()}, **{options}) shape={shape} dtype={dtype}")
    noise = None if dtype is None else jax.random.normal(jax.random.key(1), shape).astype(dtype)

    def call():
        return gm.sample(gaussian, cls(sigmas, **options), KEY, shape, noise=noise)

    clear_or_good(call, NAMES_SAMPLE + tuple(options), shape, dtype or jnp.float32)


SAMPLE = dict(sampler=step_samplers(), shape=st.sampled_from(SHAPES), dtype=st.sampled_from(DTYPES))


def prop_model_output(sampler, threshold, bad):
    """A model that returns NaN / inf / a huge value below a noise level: the driver names the first step
    that went non-finite, a step at which the model was called at a bad level (or at the level after it:
    Heun's and the corrector's second call), never silent NaN samples."""
    cls, sigmas, _ = sampler
    note(f"{cls.__name__}({sigmas.tolist()}) threshold={threshold} bad={bad}")
    model = BadBelow(jnp.float32(threshold), jnp.float32(bad))
    options = {"step_size": 1e-2, "steps_per_level": 2} if cls is gm.samplers.AnnealedLangevin else {}
    try:
        x = gm.sample(model, cls(jnp.asarray(sigmas), **options), KEY, (2, 2))
    except NonFiniteSampleError as err:
        first = next(i for i, s in enumerate(sigmas) if 0 < s < threshold)
        assert first - 1 <= err.step <= first, (err.step, first, str(err))
        assert f"step {err.step}" in str(err) and err.sigma == pytest.approx(float(sigmas[err.step]))
        event("NonFiniteSampleError")
        return
    event("finite")
    assert bool(jnp.all(jnp.isfinite(x))), x
    if not math.isfinite(bad):  # a non-finite output must have been an error had the model been called there
        assert not any(0 < s < threshold for s in sigmas[:-1]), "NaN / inf model output passed silently"


MODEL_OUTPUT = dict(
    sampler=step_samplers(schedule=st.sampled_from([np.asarray([8.0, 4.0, 2.0, 1.0, 0.0], np.float32),
                                                    np.asarray([5.0, 3.0, 1.5, 0.5, 0.1], np.float32)])),
    threshold=st.sampled_from([0.05, 0.75, 1.75, 3.5, 6.0, 100.0]),
    bad=st.sampled_from([NAN, INF, -INF, 1e30]),
)  # fmt: skip


def prop_driver_arguments(shape, noise_shape, noise_dtype, key_kind):
    """Shapes (numpy ints, zeros, negatives, floats, strings), noise of other shapes and dtypes, keys."""
    sampler = gm.samplers.Euler(gm.schedules.karras(3))
    key = {"key": KEY, "raw": jax.random.PRNGKey(0), "batch": jax.random.split(KEY, 2), "int": 0}[key_kind]
    noise = None if noise_shape is None else jnp.ones(noise_shape, noise_dtype)
    note(f"shape={shape!r} noise={noise_shape} {noise_dtype} key={key_kind}")
    want = tuple(int(d) for d in shape) if isinstance(shape, tuple) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape) else None  # fmt: skip
    dtype = jnp.float32 if noise is None else noise_dtype
    clear_or_good(lambda: gm.sample(gaussian, sampler, key, shape, noise=noise), ("shape", "noise", "key"), want,
                  dtype if want else None)  # fmt: skip


DRIVER = dict(
    shape=st.sampled_from([(2, 2), (np.int64(2), np.int32(2)), (3,), 3, (0, 2), (2, -1), (), (2.0, 2), "ab",
                           (True, 2), None]),
    noise_shape=st.sampled_from([None, (2, 2), (3,), (2, 3)]),
    noise_dtype=st.sampled_from([jnp.float32, jnp.float16, jnp.int32, jnp.bool_]),
    key_kind=st.sampled_from(["key", "key", "raw", "batch", "int"]),
)  # fmt: skip


def prop_schedule_builders(builder, steps, sigma_min, sigma_max, rho, final_zero):
    """karras / log_uniform: a clear error naming the argument, or a schedule every sampler accepts
    (steps + 1 entries, strictly descending, non-negative, finite)."""
    note(f"{builder}(steps={steps!r}, sigma_min={sigma_min}, sigma_max={sigma_max}, rho={rho})")
    kw = dict(sigma_min=sigma_min, sigma_max=sigma_max, final_zero=final_zero)
    if builder == "karras":
        kw["rho"] = rho

    def accepted(s):
        v = np.asarray(s, np.float64)
        assert v.shape == (int(steps) + 1,) and np.all(np.diff(v) < 0) and np.all(v >= 0), v
        gm.samplers.Euler(s)

    clear_or_good(lambda: getattr(gm.schedules, builder)(steps, **kw), ("steps", "sigma_min", "sigma_max", "rho"),
                  check=accepted)  # fmt: skip


NUMBER = st.one_of(st.sampled_from(SPECIAL + [1e-3, 80.0]), st.floats(1e-3, 1e3))
BUILDERS = dict(
    builder=st.sampled_from(["karras", "log_uniform"]),
    steps=st.sampled_from([1, 2, 4, np.int64(3), 0, -1, True, 2.5]),
    sigma_min=NUMBER, sigma_max=NUMBER, rho=st.one_of(st.sampled_from([7.0, 1.0, 0.5]), NUMBER),
    final_zero=st.booleans(),
)  # fmt: skip

PATHS = {"VE": ("sigma_min", "sigma_max"), "VP": ("beta_min", "beta_max"), "SubVP": ("beta_min", "beta_max"),
         "EDM": ("sigma_min", "sigma_max"), "Linear": (), "Cosine": ()}  # fmt: skip


def prop_paths_and_uniform_t(path_name, lo, hi, steps, t_min):
    """A path built from random numbers and its uniform-t grid: a clear error naming the argument, or a
    schedule a sampler accepts (a leading inf only for the paths that reach pure noise)."""
    names = PATHS[path_name]
    note(f"{path_name}({dict(zip(names, (lo, hi), strict=False))}) steps={steps} t_min={t_min}")

    def build():
        path = getattr(gm.paths, path_name)(**dict(zip(names, (lo, hi), strict=False)))
        return gm.schedules.uniform_t(path, steps, t_min=t_min)

    def accepted(s):
        v = np.asarray(s, np.float64)
        assert v.shape == (steps + 1,) and np.all(v >= 0) and np.all(np.isfinite(v[1:])), v
        assert np.all(np.diff(v[1:]) < 0) and v[0] > v[1], v
        gm.samplers.Euler(s)

    try:
        clear_or_good(build, names + ("t_min", "t_max", "steps", "path"), check=accepted)
    except AssertionError as err:
        schedule = build()  # a leading inf is pure noise where the path's scale is 0 there (Linear, Cosine)
        if "non-finite result" in str(err) and np.isposinf(np.asarray(schedule)[0]):
            path = getattr(gm.paths, path_name)(**dict(zip(names, (lo, hi), strict=False)))
            assert float(path.scale(jnp.float32(path.t_max))) == 0.0, schedule
            accepted(schedule)
            return
        raise


UNIFORM_T = dict(
    path_name=st.sampled_from(sorted(PATHS)), lo=NUMBER, hi=NUMBER, steps=st.sampled_from([1, 3]),
    t_min=st.one_of(st.none(), st.sampled_from([0.0, 1e-3, 0.5, -0.1, NAN, 1.0])),
)  # fmt: skip


def prop_autoregressive(shape, fill, dtype, temperature):
    """FVSBN(6): log_prob of random data (binary or not, of other lengths, NaN) is a clear error or finite
    log-probabilities <= 0 per row; Ancestral sampling at any temperature, binary samples or an error."""
    model = gm.autoregressive.FVSBN(6, rngs=nnx.Rngs(0))
    x = jnp.full(shape, fill) if fill is not None else jnp.arange(np.prod(shape)).reshape(shape) % 2
    x = x.astype(dtype)
    note(f"x: {shape} {dtype} fill={fill}; temperature={temperature}")
    lp = clear_or_good(lambda: model.log_prob(x), ("x",), (shape[0],) if len(shape) == 2 else None)
    if lp is not None:
        assert bool(jnp.all(lp <= 1e-6)), lp
    samples = clear_or_good(lambda: gm.sample(model, gm.samplers.Ancestral(temperature=temperature), KEY, (2, 6)),
                            ("temperature",), (2, 6))  # fmt: skip
    if samples is not None:
        assert bool(jnp.all((samples == 0) | (samples == 1)))


AUTOREGRESSIVE = dict(
    shape=st.sampled_from([(2, 6), (2, 5), (6,), (1, 6)]), fill=st.sampled_from([None, None, 1.0, 0.5, NAN, 2.0]),
    dtype=st.sampled_from([jnp.float32, jnp.int32, jnp.bool_]),
    temperature=st.sampled_from([1.0, 0.5, 0.0, -1.0, NAN, INF]),
)  # fmt: skip


def prop_losses(loss, shape, fill, dtype):
    """edm_loss on an EDMModel and cfm_loss on a PathModel: random batches (NaN, inf, large, integer, of
    another width) give a clear error or a finite scalar loss. Data whose squares overflow float32 (|x| above
    ~1e19) give an inf loss, not an error: the loss is traced inside the train step, where ``fit`` stops with
    a NonFiniteLossError naming the step (``test_train.py``), so such data are not drawn here."""
    net = gm.nets.MLP(2, 16, 2, rngs=nnx.Rngs(0))
    model = (
        gm.models.EDMModel(net)
        if loss == "edm_loss"
        else gm.models.PathModel(net, gm.paths.Linear(), gm.denoisers.Velocity())
    )
    batch = jnp.full(shape, fill, dtype) if fill is not None else jax.random.normal(KEY, shape).astype(dtype)
    note(f"{loss} batch {shape} {dtype} fill={fill}")
    clear_or_good(lambda: getattr(gm.losses, loss)(model, batch, KEY)[0], ("batch", "x", "data", "NaN"), (),
                  check=lambda v: None)  # fmt: skip


LOSSES = dict(
    loss=st.sampled_from(["edm_loss", "cfm_loss"]), shape=st.sampled_from([(4, 2), (4, 3), (4,)]),
    fill=st.sampled_from([None, None, NAN, INF, 1e6]), dtype=st.sampled_from([jnp.float32, jnp.int32]),
)  # fmt: skip


def prop_log_prob(fill, dtype, trace, sigma_min, sigma_max, rtol):
    """gm.log_prob of the N(0, I) model on random data (NaN, inf, large, integer) with random noise range and
    tolerances (traced: no new compile): a clear error, or one finite log-density per row."""
    x = jax.random.normal(KEY, (2, 2)) if fill is None else jnp.full((2, 2), fill)
    x = x.astype(dtype)
    estimator = gm.likelihood.ExactTrace() if trace == "exact" else gm.likelihood.Hutchinson(1)
    note(f"x={x.tolist()} {dtype} {trace} sigma_min={sigma_min} sigma_max={sigma_max} rtol={rtol}")

    def call():
        return gm.log_prob(gaussian, x, KEY, sigma_min=sigma_min, sigma_max=sigma_max, trace=estimator, rtol=rtol,
                           atol=rtol)  # fmt: skip

    clear_or_good(call, ("x", "sigma_min", "sigma_max", "rtol", "atol", "max_steps"), (2,))


LOG_PROB = dict(
    fill=st.sampled_from([None, None, NAN, INF, 1e6]), dtype=st.sampled_from([jnp.float32, jnp.int32]),
    trace=st.sampled_from(["exact", "hutchinson"]), sigma_min=st.sampled_from([0.002, 0.1, 0.0, -1.0, NAN, 100.0]),
    sigma_max=st.sampled_from([80.0, 10.0, INF, NAN]), rtol=st.sampled_from([1e-5, 1e-3, 0.0, -1.0]),
)  # fmt: skip

PROPERTIES = {
    "sample": (prop_sample, SAMPLE),
    "model_output": (prop_model_output, MODEL_OUTPUT),
    "driver_arguments": (prop_driver_arguments, DRIVER),
    "schedule_builders": (prop_schedule_builders, BUILDERS),
    "paths_and_uniform_t": (prop_paths_and_uniform_t, UNIFORM_T),
    "autoregressive": (prop_autoregressive, AUTOREGRESSIVE),
    "losses": (prop_losses, LOSSES),
    "log_prob": (prop_log_prob, LOG_PROB),
}


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_property(name):
    """Under the loaded profile (``ci``: 10 derandomized examples)."""
    run_property(*PROPERTIES[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_property_slow(name):
    """Under the ``slow`` profile (100 random examples each)."""
    run_property(*PROPERTIES[name], profile="slow")
