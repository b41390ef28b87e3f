"""The recipe of ``experiments/sampler_error.py``: every continuous sampler of ``gm.samplers`` at a ladder
of NFE budgets on analytic targets, scored against the exact probability-flow solution and exact samples.
``--quick``: a smoke run (the 2-D target, budgets 5 and 10, small batches, one seed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments.cli import OutputOptions, param, validate

SAMPLERS = ("Euler", "Heun", "DDIM", "EulerAncestral", "DPMSolverPP2M", "DPMSolverPP3M", "DPMSolverPP2MSDE",
            "DPMSolverPP2S", "DPMSolverPP3MSDE", "UniPC", "DEIS", "IPNDM", "IPNDMV", "LMS", "Restart",
            "EulerMaruyama", "PredictorCorrector")  # fmt: skip
"""Every fixed-step sampler of ``gm.samplers`` that a budget of 3-35 evaluations can run, by class name
(``AnnealedLangevin`` needs about 100 evaluations per noise level; ``tests/test_experiments_sampler_error.py``
checks this list against the exports)."""

TARGETS = ("eight-gaussians", "mixture-64", "digits-64")
FIT_SAMPLERS = ("Euler", "Heun", "DPMSolverPP2M", "DPMSolverPP3M", "UniPC", "DEIS", "IPNDM")


@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool = param(False, "smoke run: the 2-D target, budgets 5 and 10, small batches, one seed", select=True)
    targets: tuple[str, ...] = param(TARGETS, "analytic targets: 8 Gaussians (2-D), a random 8-component 64-D "
                                     "mixture, a 64-D mixture fitted to the 8x8 digits", choices=TARGETS,
                                     noun="target")  # fmt: skip
    samplers: tuple[str, ...] = param(SAMPLERS, "fixed-step samplers (gm.samplers class names)", choices=SAMPLERS,
                                      noun="sampler")  # fmt: skip
    nfe: tuple[int, ...] = param((3, 4, 5, 6, 8, 10, 15, 20, 35), "evaluation budgets: each sampler runs at the "
                                 "largest NFE it can reach at or below each", ge=1)  # fmt: skip
    ode_tols: tuple[float, ...] = param((1e-1, 3e-2, 1e-2, 3e-3, 1e-3), "rtol = atol of the adaptive ODE "
                                        "(Dopri5) sweep", gt=0)  # fmt: skip
    batch: int = param(2048, "samples per seed: the end-point error, sliced W2 and mode occupancy are scored on them",
                       ge=16)  # fmt: skip
    seeds: int = param(3, "seeds per cell (mean and std)", ge=1)
    fit_samplers: tuple[str, ...] = param(FIT_SAMPLERS, "samplers whose schedule gm.schedules.fit tunes (64-D "
                                          "mixture, NFE 5, 8, 10; empty: none)", choices=SAMPLERS,
                                          noun="sampler")  # fmt: skip
    fit_iterations: int = param(300, "Adam iterations of gm.schedules.fit", ge=1)
    diff_sampler_protocol: bool = param(True, "also run diff-sampler's CIFAR-10 solver/schedule protocol (NFE 3-10) "
                                        "on the 64-D digits mixture and rank it against their published FIDs")  # fmt: skip
    seed: int = param(0, "PRNG seed", ge=0)

    def __post_init__(self):
        validate(self)


QUICK = dict(targets=("eight-gaussians",), nfe=(5, 10), ode_tols=(1e-2,), batch=256, seeds=1,
             fit_samplers=("DPMSolverPP2M",), fit_iterations=40,
             diff_sampler_protocol=False)  # fmt: skip

NAMES: tuple[str, ...] = ()  # no named recipes: --quick selects


def get_config(name: str | None = None, *, quick: bool = False) -> Config:
    """The full benchmark, or the smoke run with ``quick``."""
    return Config(quick=True, **QUICK) if quick else Config()


@dataclasses.dataclass(frozen=True)
class Options(OutputOptions):
    out: Path = param(Path("runs/sampler_error"), "output folder (results.json, results.md, error_*.png)")
