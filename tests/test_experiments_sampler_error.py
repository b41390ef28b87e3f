"""``experiments/sampler_error.py``: its sampler list covers gm.samplers, and a tiny run writes its tables."""

from __future__ import annotations

import inspect
import json

import pytest

import genmodels as gm
from experiments import sampler_error
from experiments.configs import sampler_error as configs


def test_sampler_list_is_every_fixed_step_sampler():
    exported = {
        name
        for name, c in vars(gm.samplers).items()
        if isinstance(c, type) and issubclass(c, gm.samplers.AbstractStepSampler) and not inspect.isabstract(c)
    }
    assert set(configs.SAMPLERS) == exported - {"AnnealedLangevin"}


@pytest.mark.slow  # about ten compiled programs (reference, samplers, ODE, the fit's gradient): 1-2 min
def test_tiny_run(tmp_path):
    argv = ["--quick", "--samplers", "Euler", "DPMSolverPP2M", "EulerAncestral", "--nfe", "4", "--ode-tols", "0.1",
            "--fit-samplers", "Euler", "--fit-iterations", "2", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    results = sampler_error.main(argv)
    rows = results["targets"][0]["rows"]
    euler = next(r for r in rows if r["sampler"] == "Euler")
    assert euler["nfe"] == 4 and euler["rms"] > 0 and euler["swd"] > 0
    assert "rms" not in next(r for r in rows if r["sampler"] == "EulerAncestral")  # stochastic: no pathwise error
    assert next(r for r in rows if r["sampler"] == "ODE")["nfe"] > 4
    assert results["fits"][0]["gain"] > 0
    assert json.loads((tmp_path / "results.json").read_text())["targets"][0]["target"] == "eight-gaussians"
    assert "| Euler |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "error_eight-gaussians.png").stat().st_size > 1000


def test_bad_option_names_it(capsys):
    with pytest.raises(SystemExit):
        sampler_error.main(["--samplers", "Nope", "--out", "/tmp/never"])
    assert "sampler" in capsys.readouterr().err
