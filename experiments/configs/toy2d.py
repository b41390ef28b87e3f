"""Recipes of ``experiments/toy2d.py``: one per family, the same for every 2-D toy (the "2-D toys" table).

Shared by all families: AdamW with 200 warm-up steps then cosine decay to 5 %, EMA 0.999, an MLP of 4 x 256,
batch 512, 5,000 steps (the toys are normalised to unit variance per coordinate). Per family (``FAMILIES``):

* edm: sigma_data = 0.5 (EDM's default). With 1.0, the data's actual std, ``gm.nets.MLP`` does not leave
  its initial point (loss flat at 1.00 for thousands of steps), see the report of issue 3.
* ve: sigma in [0.02, 20] rather than EDM's [0.02, 100]: 20 is already ~10x the largest distance between
  the toys' points, and VE preconditioning feeds x unscaled (c_in = 1) to the network.
* ncsn / ssm: a 10-level geometric ladder 0.01..5 (NCSN's Technique 1: top level ~ the largest distance
  between data points); annealed Langevin with 50 steps per level and step 0.5 sigma_i^2 (NCSN: 100, 0.2).
* vp, ve, ncsn, ssm: batch 2048. Their 1 / sigma^2-weighted losses are noisier than EDM's and flow
  matching's: at batch 512 they miss the target on the checkerboard (ncsn 3.9x the baseline swd, 1.4x at
  2048; the sampler was not the limit: longer Langevin chains were worse, converging to the model).
* vp / ve embeddings: frequencies matched to their c_noise ranges ((M - 1) t in [0, 999]; ln(sigma / 2)).

Samplers are ``NAME`` or ``NAME-STEPS`` with NAME from ``experiments/catalog.py``; without STEPS the grid of
``GRID_STEPS`` (Heun 32 steps = 63 NFE: 18 steps, EDM's for images, blur sharp 2-D edges).
"""

from __future__ import annotations

import dataclasses

from experiments import catalog
from experiments.cli import param, validate

TOY2D_FAMILIES = ("edm", "vp", "ve", "ncsn", "ssm", "cfm", "ot-cfm", "rectified")
GRID_STEPS = {"heun": 32, "euler": 100, "dpm++2m": 20, "ddim": 50, "euler-ancestral": 50, "pc": 100}
ONLY_RECTIFIED = {"family": ("rectified",)}


@dataclasses.dataclass(frozen=True)
class Config:
    family: str = param("edm", "model family and loss (experiments/catalog.py)", choices=TOY2D_FAMILIES, select=True,
                        required=True)  # fmt: skip
    dataset: str = param("moons", "2-D toy data set", choices=catalog.TOYS, select=True, required=True)
    steps: int = param(5000, "optimiser steps (rectified: both stages together)", ge=1)
    batch: int = param(512, "batch size", ge=1)
    lr: float = param(1e-3, "peak learning rate (AdamW; warm-up, then cosine decay to 5 %)", gt=0)
    warmup: int = param(200, "learning-rate warm-up steps", ge=0)
    hidden: int = param(256, "MLP width", ge=1)
    depth: int = param(4, "MLP hidden layers", ge=1)
    emb: tuple[float, float] = param((1.0, 100.0), "frequency range of the MLP's noise-level embedding", gt=0)
    ema_decay: float = param(0.999, "EMA decay of the parameters (warmed up)", ge=0, lt=1)
    sigma_range: tuple[float, float] = param((0.002, 80.0), "sigma range of training, of the samplers' grids and "
                                             "of the NLL (VE loss range; NCSN ladder ends)", gt=0)  # fmt: skip
    sigma_data: float = param(0.5, "EDM's sigma_data", gt=0, applies={"family": ("edm",)})
    levels: int = param(10, "levels of the geometric noise ladder", ge=2, applies={"family": ("ncsn", "ssm")})
    reflow_fraction: float = param(0.4, "share of --steps spent on reflow", ge=0, lt=1, applies=ONLY_RECTIFIED)
    reflow_pairs: int = param(50_000, "number of reflow pairs drawn from the first model", ge=1,
                              applies=ONLY_RECTIFIED)  # fmt: skip
    samplers: tuple[str, ...] = param(("heun", "dpm++2m"), "samplers, the first is primary: NAME or NAME-STEPS",
                                      train=False, noun="sampler")  # fmt: skip
    n_eval: int = param(10_000, "samples for the swd (>= 256: it compares 256 quantiles) and the mmd", ge=256,
                        train=False)  # fmt: skip
    n_test: int = param(2_000, "test points for the NLL, 0 = skip", ge=0, train=False)
    density_grid: int = param(64, "side of the grid of the model-density picture, 0 = skip", ge=0, train=False)
    seed: int = param(0, "PRNG seed", ge=0)

    def __post_init__(self):
        validate(self)
        for spec in self.samplers:
            name, steps = catalog.split_spec(spec)
            if name not in catalog.SAMPLERS or name == "ancestral" or steps == 0:
                raise ValueError(f"--samplers: unknown sampler {spec!r}; choose NAME or NAME-STEPS with NAME from "
                                 f"{', '.join(n for n in catalog.SAMPLERS if n != 'ancestral')}")  # fmt: skip
        if not self.samplers or len(set(self.samplers)) != len(self.samplers):
            raise ValueError("--samplers must list at least one sampler, none twice")
        if self.family == "rectified":
            reflow = round(self.reflow_fraction * self.steps)
            if reflow < 1 or reflow >= self.steps:
                raise ValueError(f"--steps {self.steps} with --reflow-fraction {self.reflow_fraction} leaves no steps "
                                 "for one of the two stages")  # fmt: skip
            if self.reflow_pairs < self.batch:
                raise ValueError(f"--reflow-pairs ({self.reflow_pairs}) must be at least --batch ({self.batch})")

    @property
    def flow(self) -> bool:
        """Sampled from sigma = inf on the Linear path."""
        return catalog.FAMILIES[self.family].flow


FAMILIES = {  # the recipe of each family (all datasets)
    "edm": dict(sigma_data=0.5, samplers=("heun", "dpm++2m")),
    "vp": dict(batch=2048, emb=(1e-3, 1.0), samplers=("heun", "ddim")),
    "ve": dict(batch=2048, sigma_range=(0.02, 20.0), emb=(0.2, 20.0), samplers=("heun", "pc")),
    "ncsn": dict(batch=2048, sigma_range=(0.01, 5.0), levels=10, samplers=("langevin", "heun")),
    "ssm": dict(batch=2048, sigma_range=(0.01, 5.0), levels=10, samplers=("langevin", "heun")),
    "cfm": dict(samplers=("euler", "heun")),
    "ot-cfm": dict(samplers=("euler", "heun")),
    "rectified": dict(reflow_fraction=0.4, reflow_pairs=50_000, samplers=("euler", "euler-1", "euler-2")),
}


NAMES: tuple[str, ...] = ()  # no named recipes: the selectors choose


def get_config(name: str | None = None, *, family: str = "edm", dataset: str = "moons") -> Config:
    """The recipe of ``family`` on ``dataset`` (the cell of the docs table). No named recipes (``name``)."""
    if name is not None:
        raise ValueError(f"toy2d has no named configs; got {name!r}")
    return Config(family=family, dataset=dataset, **FAMILIES[family])
