"""``gm.schedules.fit``: a schedule fitted to a sampler at a fixed evaluation budget beats Karras' on noise it
was not fitted on (exact mixture denoiser, so the error is the sampler's own), within its budget."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import genmodels as gm
from genmodels.errors import ArgumentError, ArgumentTypeError

S = gm.samplers
TARGET = gm.targets.eight_gaussians()


def test_steps_for_nfe_reads_the_samplers_cost():
    assert gm.schedules.steps_for_nfe(S.Euler, 5) == 5
    assert gm.schedules.steps_for_nfe(S.Heun, 5) == 3  # 2 + 2 + 1 (the last step to 0 has no correction)
    assert gm.schedules.sampler_nfe(S.Heun(gm.schedules.karras(3))) == 5


def test_fitted_schedule_beats_karras_on_held_out_noise():
    fit = gm.schedules.fit(TARGET, S.DPMSolverPP2M, 5, jax.random.key(0), (128, 2), iterations=60)
    sig = np.asarray(fit.sigmas)
    assert fit.steps == 5 and fit.nfe == 5 and sig.shape == (6,)
    assert sig[0] == pytest.approx(80.0) and sig[-2] == pytest.approx(0.002, rel=1e-5) and sig[-1] == 0
    assert np.all(np.diff(sig) < 0)
    assert float(fit.final_error) < float(fit.initial_error)
    noise = jax.random.normal(jax.random.key(99), (512, 2))  # held out: another key
    ref = gm.schedules.reference_endpoint(TARGET, noise, 0.002, 80.0)
    key = jax.random.key(1)
    fitted = gm.schedules.endpoint_error(S.DPMSolverPP2M(fit.sigmas), TARGET, noise, ref, key)
    karras = gm.schedules.endpoint_error(S.DPMSolverPP2M(gm.schedules.karras(5)), TARGET, noise, ref, key)
    assert float(fitted) < 0.8 * float(karras), (float(fitted), float(karras))


def test_bad_input():
    key = jax.random.key(0)
    with pytest.raises(ArgumentError, match="nfe"):
        gm.schedules.fit(TARGET, S.Euler, 0, key, (8, 2))
    with pytest.raises(ArgumentTypeError, match="sampler_factory"):
        gm.schedules.fit(TARGET, "euler", 5, key, (8, 2))
    with pytest.raises(ArgumentError, match="iterations"):
        gm.schedules.fit(TARGET, S.Euler, 5, key, (8, 2), iterations=0)
