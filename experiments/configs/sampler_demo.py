"""The recipe of ``experiments/sampler_demo.py``: every fixed-step sampler at a few NFE budgets, and the
adaptive ODE at a few tolerances, on the exact denoiser of eight Gaussians."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments.cli import OutputOptions, param, validate

FIXED = ("euler", "heun", "heun-churn", "dpm++2m", "dpm++3m-sde", "ddim", "euler-ancestral", "euler-maruyama", "pc",
         "langevin")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config:
    samplers: tuple[str, ...] = param(FIXED, "fixed-step samplers (experiments/catalog.py)", noun="sampler",
                                      choices=FIXED)  # fmt: skip
    nfe: tuple[int, ...] = param((10, 20, 50, 100), "denoiser-evaluation budgets of the fixed-step samplers", ge=2)
    ode_tols: tuple[float, ...] = param((1e-2, 1e-3, 1e-5), "rtol = atol of the adaptive ODE sampler", gt=0)
    batch: int = param(4096, "samples per run", ge=2)
    seeds: int = param(5, "seeds per sampler and budget; the table shows mean ± std over them", ge=1)
    seed: int = param(0, "PRNG seed (seed s of --seeds uses fold_in(key(seed), s))", ge=0)

    def __post_init__(self):
        validate(self)


NAMES: tuple[str, ...] = ()  # no named recipes: the selectors choose


def get_config(name: str | None = None) -> Config:
    """The demo's recipe."""
    return Config()


@dataclasses.dataclass(frozen=True)
class Options(OutputOptions):
    out: Path = param(Path("runs/sampler_demo"), "output folder (results.json, samples.png)")
    quiet: bool = param(False, "print only the table", flag=True)
