"""Recipes of ``experiments/images.py``: the rows of the "Images" section of ``docs/results.md``.

The default of each (family, dataset) is its row of the main table (one NVIDIA H100): UNet base 32, batch
128, AdamW 1e-3 with 200 warm-up steps, EMA 0.999; digits: 3,000 steps, exact bits/dim on the 360 held-out
digits, Fréchet distance with 1,000 samples (fixed network, 5 sampling seeds); MNIST: 10,000 steps, Hutchinson bits/dim on 500 held-out digits,
2,000 samples. Named variants: the class-conditional rows (``*-cfg2``), MNIST EDM at 30,000 steps, and
``digits-*-cpu``, sized for a few minutes on 2 CPU cores (UNet base 16, 2,000 steps, Hutchinson bits/dim).
"""

from __future__ import annotations

import dataclasses

from experiments import catalog
from experiments.cli import param, validate

TRAIN_IMAGES = {"digits": 1437, "mnist": 8000}  # the fixed splits of images.py


@dataclasses.dataclass(frozen=True)
class Config:
    family: str = param("edm", "edm: EDMModel + edm_loss; fm: velocity PathModel on the Linear path + cfm_loss",
                        choices=("edm", "fm"), select=True)  # fmt: skip
    dataset: str = param("digits", "digits: scikit-learn's 8x8 digits; mnist: the official test digits (IDX files)",
                         choices=catalog.IMAGE_DATASETS, select=True)  # fmt: skip
    data_path: str = param("../shared/data/mnist", "folder of the MNIST IDX files", train=False,
                           applies={"dataset": ("mnist",)})  # fmt: skip
    steps: int = param(3000, "optimiser steps (a resumed run may train further)", ge=1, train=False)
    batch: int = param(128, "batch size", ge=1)
    class_conditional: bool = param(False, "UNet with labels, trained with label dropout")
    guidance: float = param(1.0, "classifier-free guidance scale of the samples", train=False,
                            applies={"class_conditional": (True,)})  # fmt: skip
    label_dropout: float = param(0.1, "probability of the null label in training", ge=0, lt=1)
    base: int = param(32, "UNet base channels", ge=1)
    lr: float = param(1e-3, "peak learning rate (AdamW, linear warm-up, then constant)", gt=0)
    warmup: int = param(200, "learning-rate warm-up steps", ge=0)
    ema: float = param(0.999, "EMA decay, warmed up as min(ema, (1 + s) / (10 + s)) after s steps", ge=0, lt=1)
    split_seed: int = param(0, "seed of the fixed train / held-out split", ge=0)
    num_samples: int = param(1000, "samples per sampler for the Fréchet distance (>= 2: a covariance is fitted)",
                             ge=2, train=False)  # fmt: skip
    bpd_images: int = param(360, "held-out images for bits/dim", ge=1, train=False)
    bpd_batch: int = param(128, "images per log-likelihood solve", ge=1, train=False)
    bpd_trace: str = param("exact", "divergence of the log-likelihood ODE: exact, or Hutchinson's estimate",
                           choices=("exact", "hutchinson"), train=False)  # fmt: skip
    bpd_probes: int = param(1, "Rademacher probes per image of Hutchinson's estimate", ge=1, train=False)
    bpd_tol: float = param(1e-5, "rtol = atol of the log-likelihood ODE solve", gt=0, train=False)
    fd_seeds: int = param(5, "sampling seeds per sampler (and draws of the floor and ceiling) of the Fréchet "
                          "distance; its mean and spread are reported", ge=1, train=False)  # fmt: skip
    steps_per_call: int | None = param(None, "train steps per compiled call (default: 1 on a CPU, where XLA runs "
                                       "convolutions in a loop body many times slower, jax-ml/jax#12868; 10 "
                                       "elsewhere)", ge=1, train=False)  # fmt: skip
    seed: int = param(0, "PRNG seed", ge=0)

    def __post_init__(self):
        validate(self)
        if self.batch > TRAIN_IMAGES[self.dataset]:
            raise ValueError(f"--batch {self.batch} exceeds the {TRAIN_IMAGES[self.dataset]} training images")


DATASETS = {
    "digits": {},
    "mnist": dict(steps=10_000, num_samples=2000, bpd_images=500, bpd_trace="hutchinson"),
}
NAMED = {
    "digits-edm-cfg2": dict(family="edm", dataset="digits", class_conditional=True, guidance=2.0),
    "mnist-edm-30k": dict(family="edm", dataset="mnist", steps=30_000),
    "mnist-fm-cfg2": dict(family="fm", dataset="mnist", class_conditional=True, guidance=2.0),
    "digits-edm-cpu": dict(family="edm", dataset="digits", steps=2000, base=16, bpd_trace="hutchinson"),
    "digits-fm-cpu": dict(family="fm", dataset="digits", steps=2000, base=16, bpd_trace="hutchinson"),
}
NAMES = tuple(f"{d}-{f}" for d in DATASETS for f in ("edm", "fm")) + tuple(NAMED)


def get_config(name: str | None = None, *, family: str = "edm", dataset: str = "digits") -> Config:
    """The recipe ``name`` (one of ``NAMES``), else the default of ``family`` on ``dataset``."""
    if name in NAMED:
        fields = NAMED[name]
        return Config(**{**DATASETS[fields["dataset"]], **fields})
    if name is not None:
        dataset, family = name.split("-")
    return Config(family=family, dataset=dataset, **DATASETS[dataset])
