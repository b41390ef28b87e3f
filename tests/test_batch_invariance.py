"""Samples that do not depend on the batch, the device count or the chunking (issue 11).

Row j of a stochastic sampler is a function of (key, j, its starting noise) only: every random draw of
row j comes from JAX's partitionable threefry (``normal(key, (B, d))[j]`` does not depend on B) or from
``fold_in(key, j)`` (the per-row Brownian trees of the adaptive ``SDE``). What XLA does not guarantee is
bitwise batch-invariant *arithmetic* (a model's matmul may round differently for 64 rows than for 1), so
the samples are compared to 1e-6 relative in float32.

Every stochastic sampler exported by ``gm.samplers`` is discovered (``deterministic == False`` with its
default options, plus the stochastic options of deterministic samplers listed in ``STOCHASTIC_OPTIONS``),
so a new sampler is covered with no edit here. The one documented exception is
``PredictorCorrector(norms="batch")`` (the default): its Langevin step size averages norms over the
batch, as score_sde does, so a row depends on the others by design (docs/batch_invariance.md); its
per-row rules ``norms="sample"`` and ``norms="sigma"`` are tested instead.

The sharded run (a batch split over 4 CPU devices) is one subprocess, as XLA's device count is fixed
when JAX starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import build_step_sampler as build
from helpers import exported_samplers

import genmodels as gm
from genmodels.samplers import AbstractDenoiserSampler, AbstractSampler, AbstractStepSampler

REPO = Path(__file__).resolve().parents[1]
S = gm.samplers
# the model, schedule and batch of tests/test_samplers.py: the batch-64 programs are shared with it
MIX = gm.targets.GaussianMixture(
    jnp.array([0.5, 0.3, 0.2]), jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]]), jnp.array([0.3, 0.5, 0.4])
)
SCHEDULE = gm.schedules.karras(8, 0.01, 40.0)
BATCH, DIM = 64, 2

# samplers whose batch dependence is by design, with the reason (also in their docstrings)
EXCEPTIONS = {
    "PredictorCorrector": 'norms="batch" (the default) averages the Langevin step size over the batch, as '
    "score_sde does; the per-row rules are tested as variants",
}
# stochastic options of samplers that are deterministic (or batch-dependent) by default
STOCHASTIC_OPTIONS = {
    "PredictorCorrector": [{"norms": "sample"}, {"norms": "sigma"}],
    "DDIM": [{"eta": 1.0}],
    "Heun": [{"s_churn": 1.0}],
}


def _build(cls: type, **options) -> AbstractSampler:
    if issubclass(cls, AbstractStepSampler):
        return build(cls, SCHEDULE, **options)
    return cls(**options)


# in the default suite (two compiles each); every other case runs with -m slow
DEFAULT_CASES = {"SDE", "EulerAncestral", "EulerMaruyama"}


def _stochastic_cases() -> list:
    cases = []
    for cls in exported_samplers(AbstractDenoiserSampler):
        found = [({}, cls.__name__)] if not _build(cls).deterministic and cls.__name__ not in EXCEPTIONS else []
        for options in STOCHASTIC_OPTIONS.get(cls.__name__, []):
            found.append((options, f"{cls.__name__}[{','.join(f'{k}={v}' for k, v in options.items())}]"))
        for options, name in found:
            marks = () if name in DEFAULT_CASES else (pytest.mark.slow,)
            cases.append(pytest.param(cls, options, id=name, marks=marks))
    return cases


CASES = _stochastic_cases()


def _relative_gap(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def test_row_draws_do_not_depend_on_the_batch():
    """The primitive under every stochastic sampler: partitionable threefry stays on, so row j of
    ``normal(key, (B, d))`` is bitwise the same for every B > j (and so are the per-step fold_in keys)."""
    assert jax.config.jax_threefry_partitionable
    key = jax.random.fold_in(jax.random.key(3), 7)  # a step's key, as AbstractStepSampler derives it
    full = np.asarray(jax.random.normal(key, (BATCH, DIM)))
    for rows in (1, 5, 63):
        np.testing.assert_array_equal(np.asarray(jax.random.normal(key, (rows, DIM))), full[:rows])


def test_exceptions_are_real_samplers():
    names = {c.__name__ for c in exported_samplers(AbstractSampler)}
    assert set(EXCEPTIONS) <= names and set(STOCHASTIC_OPTIONS) <= names
    assert {"EulerAncestral", "EulerMaruyama", "SDE"} <= {p.id for p in CASES}


@pytest.mark.parametrize("cls, options", CASES)
def test_row_zero_of_a_batch_matches_a_batch_of_one(cls, options):
    sampler = _build(cls, **options)
    assert not sampler.deterministic
    key = jax.random.key(11)
    big = gm.solve(MIX, sampler, key, (BATCH, DIM))
    one = gm.solve(MIX, sampler, key, (1, DIM))
    assert _relative_gap(big.samples[:1], one.samples) <= 1e-6
    if np.ndim(big.nfe) == 1:  # per-row NFE: row 0 took the same steps in both
        assert int(big.nfe[0]) == int(one.nfe[0])


def test_ancestral_rows_do_not_depend_on_the_batch():
    """The autoregressive sampler draws u ~ U(0, 1) per step from fold_in(key, i) with shape (B, ...)."""
    from flax import nnx

    model = gm.autoregressive.FVSBN(6, rngs=nnx.Rngs(0))
    key = jax.random.key(5)
    big = gm.sample(model, S.Ancestral(), key, (BATCH, 6))
    np.testing.assert_array_equal(np.asarray(gm.sample(model, S.Ancestral(), key, (1, 6))), np.asarray(big[:1]))


@pytest.mark.slow
def test_shared_controller_depends_on_the_batch():
    """What per-row control removes: with one controller for the batch (per_sample=False), row 0 moves
    with the batch (the steps follow the RMS error over all rows)."""
    sampler = S.SDE(per_sample=False)
    key = jax.random.key(11)
    big = gm.sample(MIX, sampler, key, (BATCH, DIM))
    assert _relative_gap(big[:1], gm.sample(MIX, sampler, key, (1, DIM))) > 1e-4


WORKER = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    import genmodels as gm

    assert jax.device_count() == 4, jax.devices()
    sharding = NamedSharding(Mesh(np.array(jax.devices()), ("batch",)), PartitionSpec("batch"))
    mix = gm.targets.GaussianMixture(jnp.array([0.5, 0.3, 0.2]), jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]]),
                                     jnp.array([0.3, 0.5, 0.4]))
    sig = gm.schedules.karras(8, 0.01, 40.0)
    samplers = {"DPMSolverPP2M": gm.samplers.DPMSolverPP2M(sig), "EulerAncestral": gm.samplers.EulerAncestral(sig),
                "SDE": gm.samplers.SDE()}
    key, out = jax.random.key(11), {}
    for name, sampler in samplers.items():
        plain = gm.solve(mix, sampler, key, (64, 2))
        sharded = gm.solve(mix, sampler, key, (64, 2), sharding=sharding)
        gap = float(jnp.max(jnp.abs(plain.samples - sharded.samples)) / jnp.max(jnp.abs(plain.samples)))
        out[name] = {"gap": gap, "kept": sharded.samples.sharding == sharding,
                     "nfe_equal": bool(np.all(np.asarray(plain.nfe) == np.asarray(sharded.nfe)))}
    noise = jax.device_put(jax.random.normal(key, (64, 2)), sharding)
    out["noise_kept"] = gm.sample(mix, samplers["EulerAncestral"], key, (64, 2), noise=noise).sharding == sharding
    try:
        gm.sample(mix, samplers["EulerAncestral"], key, (6, 2), sharding=sharding)
        out["bad"] = None
    except gm.errors.ArgumentError as err:
        out["bad"] = str(err)
    print(json.dumps(out))
    """
)


def test_sharded_equals_unsharded_and_keeps_the_sharding(tmp_path):
    """A batch of 64 split over 4 CPU devices gives the same samples (to 1e-6; bitwise in practice) as
    one device, for a deterministic, a stochastic step and the per-row adaptive sampler; the samples keep
    the sharding (given, or that of sharded noise); a sharding that does not divide the batch is an
    ArgumentError naming ``sharding``."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}  # fmt: skip
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("DPMSolverPP2M", "EulerAncestral", "SDE"):
        assert out[name]["gap"] <= 1e-6 and out[name]["kept"] and out[name]["nfe_equal"], (name, out[name])
    assert out["noise_kept"]
    assert out["bad"] is not None and out["bad"].startswith("sharding")


def test_sharding_that_is_not_a_sharding_is_refused():
    with pytest.raises(gm.errors.ArgumentTypeError, match="sharding"):
        gm.sample(MIX, S.EulerAncestral(SCHEDULE), jax.random.key(0), (BATCH, DIM), sharding="batch")
    one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    x = gm.sample(MIX, S.EulerAncestral(SCHEDULE), jax.random.key(0), (BATCH, DIM), sharding=one_device)
    assert x.sharding == one_device


def test_given_noise_inside_the_callers_jit():
    """Noise traced by the caller's jit has no sharding to read: the driver leaves the layout to the caller."""
    target = gm.targets.eight_gaussians()
    sampler = gm.samplers.EulerAncestral(gm.schedules.karras(4))
    z = jax.random.normal(jax.random.key(1), (8, 2))
    inside = jax.jit(lambda key, z: gm.sample(target, sampler, key, (8, 2), noise=z))(jax.random.key(0), z)
    np.testing.assert_allclose(
        inside, gm.sample(target, sampler, jax.random.key(0), (8, 2), noise=z), rtol=1e-5, atol=1e-5
    )
