"""The recipe of ``experiments/demo.py``: which parts run and how long (a few minutes on 2 CPU cores;
``--quick``: a smoke run of a few minutes; it keeps the digits' 500 samples, so its Fréchet distances read against
the same floor and ceiling as the full demo's). The parts start from the recipes of ``configs/toy2d.py`` (flow matching
on 8 Gaussians, EDM on two moons) and ``configs/images.py`` (``digits-edm-cpu``) with the sizes below."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments.cli import param, validate


@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool = param(False, "a smoke run of every part (a few minutes; poor scores, read against the same "
                        "floor and ceiling)", select=True)  # fmt: skip
    toys: tuple[str, ...] = param(("cfm-8gaussians", "edm-moons"), "2-D parts, FAMILY-DATASET each (toy2d.py)")
    toy_steps: int = param(3000, "training steps of each 2-D part", ge=1)
    n_eval: int = param(5000, "samples for the swd of each 2-D part", ge=256)
    n_test: int = param(500, "test points for the NLL of each 2-D part", ge=0)
    density_grid: int = param(48, "side of the model-density grid of each 2-D part, 0 = skip", ge=0)
    image_steps: int = param(1500, "training steps of the digits part (images.py, config digits-edm-cpu)", ge=1)
    image_base: int = param(16, "UNet base channels of the digits part", ge=1)
    num_samples: int = param(500, "samples per sampler for the digits' Fréchet distance", ge=2)
    bpd_images: int = param(120, "held-out digits for bits/dim", ge=1)
    fd_seeds: int = param(5, "sampling seeds of the digits' Fréchet distance (mean and spread reported)", ge=1)

    def __post_init__(self):
        validate(self)
        for part in self.toys:
            if "-" not in part:
                raise ValueError(f"--toys: expected FAMILY-DATASET (e.g. cfm-8gaussians), got {part!r}")


QUICK = dict(toy_steps=60, n_eval=1000, n_test=64, density_grid=16, image_steps=20, image_base=8, bpd_images=8)  # fmt: skip


NAMES: tuple[str, ...] = ()  # no named recipes: the selectors choose


def get_config(name: str | None = None, *, quick: bool = False) -> Config:
    """The demo's recipe (``quick``: the smoke run)."""
    return Config(quick=quick, **(QUICK if quick else {}))


@dataclasses.dataclass(frozen=True)
class Options:
    out: Path = param(Path("runs/demo"), "folder of the demo: one run folder per part and summary.json")
    resume: bool = param(False, "finish an interrupted demo in --out: finished parts are read back, an unfinished "
                         "one continues from its latest checkpoint", flag=True, exclusive="mode")  # fmt: skip
    overwrite: bool = param(False, "delete an earlier demo in --out and start afresh", flag=True, exclusive="mode")
    quiet: bool = param(False, "print only the final table (no progress)", flag=True)
