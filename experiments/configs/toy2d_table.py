"""The recipe of ``experiments/toy2d_table.py``: the family x dataset grid of the "2-D toys" table. Each cell
is the default recipe of its family (``configs/toy2d.py``) at ``steps`` and ``seed``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments import catalog
from experiments.cli import param, validate
from experiments.configs.toy2d import TOY2D_FAMILIES


@dataclasses.dataclass(frozen=True)
class Config:
    families: tuple[str, ...] = param(TOY2D_FAMILIES, "rows: model families", choices=TOY2D_FAMILIES, noun="family")
    datasets: tuple[str, ...] = param(("8gaussians", "moons", "checkerboard"), "columns: 2-D toys",
                                      choices=catalog.TOYS, noun="dataset")  # fmt: skip
    steps: int = param(5000, "optimiser steps of every cell", ge=1)
    seed: int = param(0, "PRNG seed of every cell", ge=0)

    def __post_init__(self):
        validate(self)


NAMES: tuple[str, ...] = ()  # no named recipes: the selectors choose


def get_config(name: str | None = None) -> Config:
    return Config()


@dataclasses.dataclass(frozen=True)
class Options:
    out: Path = param(None, "folder of the cells (OUT/FAMILY-DATASET), table.json and table.md", required=True)
    jobs: int = param(1, "cells run at once", ge=1)
    single_threaded: bool = param(False, "one XLA CPU thread per cell (use with --jobs)", flag=True)
    resume: bool = param(False, "read cells that have results.json, continue unfinished ones", flag=True,
                         exclusive="mode")  # fmt: skip
    overwrite: bool = param(False, "redo every cell (toy2d.py --overwrite)", flag=True, exclusive="mode")
    quiet: bool = param(False, "print nothing but failures (the table is in --out/table.md)", flag=True)
    docs: Path | None = param(
        None, "markdown file whose toy2d-table block is replaced (default: none, only --out/table.md)"
    )
