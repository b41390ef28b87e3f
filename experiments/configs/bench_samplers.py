"""The recipe of ``experiments/bench_samplers.py``: the cells of the sampler benchmark (docs/benchmarks.md)
and its likelihood part. ``--quick``: a smoke run (batch 1,024 only, short budgets, 3 spread keys)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments import catalog
from experiments.cli import param, validate

SAMPLERS = ("euler", "heun", "dpm++2m", "dpm++3m-sde", "ddim", "euler-ancestral", "euler-maruyama", "pc", "langevin",
            "ode")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool = param(False, "small cells, short budgets (smoke test)", select=True)
    denoisers: tuple[str, ...] = param(("mlp", "mixture"), "denoisers: a random EDM-preconditioned MLP, the exact "
                                       "denoiser of a Gaussian mixture", choices=("mlp", "mixture"), noun="denoiser")  # fmt: skip
    dims: tuple[int, ...] = param((2, 64), "data dimensions", ge=1)
    batches: tuple[int, ...] = param((1, 64, 1024), "batch sizes", ge=1)
    samplers: tuple[str, ...] = param((), "samplers (class names of gm.samplers or names of experiments/catalog.py; "
                                      "default: every continuous sampler gm.samplers exports)", noun="sampler")  # fmt: skip
    steps: int = param(18, "schedule steps (karras) of the fixed-step samplers", ge=1)
    budget: float = param(1.0, "seconds of repeats per timing (median of >= 3)", gt=0)
    peers: bool = param(True, "time k-diffusion / torchdiffeq beside genmodels (the bench extra)")
    torchdiffeq: bool = param(True, "time torchdiffeq's dopri5 against gm.samplers.ODE")
    sampling: bool = param(True, "time the samplers (--no-sampling: the likelihood part only)")
    likelihood: bool = param(True, "time gm.log_prob against scipy and k-diffusion")
    ll_points: int = param(256, "points of the likelihood part", ge=2)
    probes: int = param(8, "probes of the Hutchinson spread comparison", ge=1)
    spread_keys: int = param(8, "keys of the Hutchinson spread comparison", ge=2)
    torch_device: str = param(
        "auto", "torch's device (auto: cuda when JAX runs on a GPU)", choices=("auto", "cpu", "cuda")
    )
    tf32: bool = param(False, "allow TF32 matmuls on a GPU (both JAX and torch)")
    clock: str = param("wall", "wall: wall seconds, one thread per core on each side; cpu: process CPU seconds, one "
                       "thread on each side (XLA and torch), not inflated by a loaded machine", choices=("wall", "cpu"))  # fmt: skip
    refuse_loaded: bool = param(False, "write no markdown tables when the load exceeded the core count")
    seed: int = param(0, "PRNG seed", ge=0)

    def __post_init__(self):
        validate(self)
        for name in self.samplers:  # a catalog name, or a class name (checked against gm.samplers by the run)
            if name not in catalog.SAMPLERS and not name.isidentifier():
                catalog.sampler_name(name)  # ValueError naming it


QUICK = dict(budget=0.2, dims=(64,), batches=(1, 1024), spread_keys=3)


NAMES: tuple[str, ...] = ()  # no named recipes: the selectors choose


def get_config(name: str | None = None, *, quick: bool = False) -> Config:
    return Config(quick=quick, **(QUICK if quick else {}))


@dataclasses.dataclass(frozen=True)
class Options:
    out: Path | None = param(None, "also write the JSON here (a file; parents created)")
    markdown: Path | None = param(None, "also write the markdown tables here")
    merge: tuple[Path, ...] = param((), "combine these JSON results (with --out / --markdown) and exit")
