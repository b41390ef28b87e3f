"""The recipe of ``experiments/guidance.py``: classifier-free guidance, the same with a guidance interval, and
autoguidance, scored against the exact class distributions of an analytic class-conditional mixture.

The models are the target's own components made imperfect in a controlled way, all exact to evaluate: the
"good" model's component standard deviations are ``good_widen`` times the true ones, the "bad" guide's
``bad_widen`` times. Heun on Karras' grid with ``steps`` steps (63 denoiser calls at 32) keeps the sampler's
own error well below the differences measured (the script reports it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments.cli import param, validate

METHODS = ("cfg", "cfg-interval", "autoguidance")


@dataclasses.dataclass(frozen=True)
class Config:
    methods: tuple[str, ...] = param(METHODS, "guidance methods", choices=METHODS, noun="method")
    scales: tuple[float, ...] = param((1.0, 1.25, 1.5, 2.0, 3.0, 4.0), "guidance weights w (1: the good model alone)")
    depth: int = param(6, "branching levels of each class's tree (gm.targets.branching_tree)", ge=1)
    tree_seed: int = param(0, "PRNG seed of the tree's branch perturbations", ge=0)
    good_widen: float = param(1.15, "the good model's component stds over the true ones", ge=1)
    bad_widen: float = param(1.6, "the bad guide's component stds over the true ones (autoguidance)", ge=1)
    bad_per_branch: int = param(8, "the bad guide's components per branch (8: the true ones; fewer: moment-matched "
                                "runs, coarser)", ge=1, lt=9)  # fmt: skip
    intervals: tuple[float, ...] = param((0.2, 2.0, 0.02, 0.2), "guidance intervals of cfg-interval as pairs "
                                         "LO HI LO HI ... (noise levels; one row per pair)", ge=0)  # fmt: skip
    steps: int = param(32, "Heun steps on Karras' grid (2 steps - 1 denoiser calls)", ge=2)
    per_class: int = param(2000, "samples per class (>= 256: the sliced W2 compares 256 quantiles)", ge=256)
    baseline_pairs: int = param(5, "pairs of exact sample sets for the sliced W2 baseline (its mean and std)", ge=2)
    seed: int = param(0, "PRNG seed", ge=0)

    def __post_init__(self):
        validate(self)
        pairs = self.interval_pairs
        if len(self.intervals) % 2 or not pairs or any(lo > hi for lo, hi in pairs):
            raise ValueError(f"--intervals: need pairs LO HI with LO <= HI, got {self.intervals}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError("--methods must list at least one method, none twice")
        if not self.scales or len(set(self.scales)) != len(self.scales):
            raise ValueError("--scales must list at least one weight, none twice")

    @property
    def interval_pairs(self) -> tuple[tuple[float, float], ...]:
        """``intervals`` as (lo, hi) pairs."""
        return tuple(zip(self.intervals[::2], self.intervals[1::2], strict=False))


NAMES: tuple[str, ...] = ()  # one recipe


def get_config(name: str | None = None) -> Config:
    """The experiment's recipe (the table of docs/guidance.md)."""
    if name is not None:
        raise ValueError(f"guidance has no named configs; got {name!r}")
    return Config()


@dataclasses.dataclass(frozen=True)
class Options:
    out: Path = param(Path("runs/guidance"), "output folder (results.json, table.md, samples.png, tradeoff.png)")
    quiet: bool = param(False, "do not print the table", flag=True)
