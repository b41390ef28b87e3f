"""Recipes of ``experiments/binary_density.py``: the rows of "Autoregressive models on binary data".

The default of each (model, dataset) is the recipe of its published row (``RECIPES``), e.g. MADE on dna
trains with the L2 penalty 1e-2 that its 84.1-nat row needs. Named variants (``VARIANTS``): the MADE mask
pools (``*-made-masks``: a fresh ordering and connectivity per minibatch, direct connections, 1,000 masks
averaged at test time, the MADE authors' recipe for dna) and MADE on MNIST without the penalty. ``--dataset
npz --data-path FILE`` trains on your own ``.npz`` (train_data / valid_data / test_data) with the base
recipe and no published reference.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments import catalog
from experiments.cli import param, validate

# Test NLL (nats) from the NADE (Uria et al., JMLR 2016) and MADE (Germain et al., ICML 2015) tables.
REFERENCES = {
    "dna": {"fvsbn": 83.64, "nade": 84.81, "eonade": 82.31, "made": 83.63, "made_mask_sampling": 79.66},
    "mushrooms": {"fvsbn": 10.27, "nade": 9.81, "eonade": 9.68, "made": 9.68, "made_mask_sampling": 9.69},
    "mnist": {"fvsbn": 97.45, "nade": 88.33, "made": 86.64, "pixelcnn": 81.30,
              "note": "standard 50k/10k/10k binarised MNIST; not comparable with the 8k/1k/1k split used here"},
}  # fmt: skip
IMAGES = ("digits", "mnist")
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # ../shared/data beside the checkout


@dataclasses.dataclass(frozen=True)
class Config:
    model: str = param("made", "autoregressive model", choices=tuple(catalog.AR_MODELS), select=True, required=True)
    dataset: str = param("digits", "dna / mushrooms: the UCI benchmarks; digits: 8x8 digits at 0.5; mnist: the "
                         "official test digits split 8k/1k/1k; npz: your own file (--data-path)",
                         choices=catalog.BINARY_DATASETS, select=True)  # fmt: skip
    data_path: str | None = param(None, "an .npz with train_data / valid_data / test_data (dna, mushrooms, npz; "
                                  "default ../shared/data/uci-binary/<dataset>.npz), or the MNIST IDX folder "
                                  "(default ../shared/data/mnist)", train=False)  # fmt: skip
    binarization: str = param("threshold", "MNIST: pixel > 0.5, or one Bernoulli draw per pixel",
                              choices=("threshold", "stochastic"), applies={"dataset": ("mnist",)})  # fmt: skip
    steps: int = param(20_000, "optimiser steps at most (validation may stop earlier)", ge=1)
    batch_size: int = param(100, "batch size", ge=1)
    lr: float = param(1e-3, "learning rate (Adam, or AdamW with --weight-decay)", gt=0)
    weight_decay: float = param(0.0, "AdamW's decoupled weight decay", ge=0)
    l2: float = param(0.0, "L2 penalty on the weight matrices, added to the mean NLL", ge=0)
    ema: float = param(0.999, "EMA decay of the parameters (0: no EMA)", ge=0, lt=1)
    validate_every: int = param(200, "steps between validations (validation NLL, early stopping)", ge=1)
    patience: int = param(10, "stop after this many validations without improvement", ge=1)
    hidden: tuple[int, ...] = param((500,), "hidden units: NADE's H (one value), MADE's layer widths", ge=1,
                                    applies={"model": ("nade", "made")})  # fmt: skip
    num_masks: int = param(1, "MADE: size of the pool of masks (orderings and connectivities) that training draws "
                           "one from per minibatch; a huge pool (1000000) is a fresh mask per minibatch",
                           ge=1, applies={"model": ("made",)})  # fmt: skip
    eval_masks: int | None = param(None, "MADE: masks averaged (log-mean-exp of probabilities) for the reported "
                                   "NLLs (default min(num-masks, 1000))", ge=1, train=False,
                                   applies={"model": ("made",)})  # fmt: skip
    valid_masks: int | None = param(None, "MADE: masks averaged for validation / early stopping (default "
                                    "min(num-masks, 300))", ge=1, applies={"model": ("made",)})  # fmt: skip
    order_agnostic: bool = param(False, "MADE: each mask has its own ordering", applies={"model": ("made",)})
    direct: bool = param(False, "MADE: direct input-output connections", applies={"model": ("made",)})
    dim: int = param(64, "Transformer width", ge=1, applies={"model": ("transformer",)})
    heads: int = param(4, "Transformer attention heads", ge=1, applies={"model": ("transformer",)})
    layers: int = param(2, "Transformer blocks / PixelCNN hidden layers", ge=1,
                        applies={"model": ("transformer", "pixelcnn")})  # fmt: skip
    channels: int = param(64, "PixelCNN channels", ge=1, applies={"model": ("pixelcnn",)})
    gated: bool = param(False, "gated PixelCNN", applies={"model": ("pixelcnn",)})
    steps_per_call: int | None = param(None, "train steps per compiled call (default 50; 1 for PixelCNN on a CPU, "
                                       "where XLA runs convolutions inside a loop body many times slower, "
                                       "jax-ml/jax#12868)", ge=1, train=False)  # fmt: skip
    seed: int = param(0, "PRNG seed", ge=0)

    def __post_init__(self):
        validate(self)
        if self.model == "pixelcnn" and self.dataset not in IMAGES:
            raise ValueError(f"--model pixelcnn needs image data (--dataset digits or mnist), not {self.dataset}")
        if self.model == "nade" and len(self.hidden) != 1:
            raise ValueError(f"--hidden: NADE takes one hidden size, got {len(self.hidden)}")

    def data_source(self) -> Path | None:
        """The file (dna, mushrooms, npz) or IDX folder (mnist) the data is read from; None for digits."""
        if self.dataset == "digits" or (self.dataset == "npz" and self.data_path is None):
            return None
        if self.data_path is not None:
            return Path(self.data_path)
        return SHARED_DATA / "mnist" if self.dataset == "mnist" else SHARED_DATA / "uci-binary" / f"{self.dataset}.npz"


RECIPES = {  # (model, dataset) -> the options of its published row
    ("fvsbn", "dna"): dict(l2=1e-3, steps=10_000, patience=8),
    ("nade", "dna"): dict(steps=8000, patience=8),
    ("made", "dna"): dict(l2=1e-2, steps=10_000, patience=8),
    ("transformer", "dna"): dict(dim=32, lr=3e-3, steps=4000, patience=5),
    ("fvsbn", "mushrooms"): dict(lr=1e-2, l2=1e-5, steps=30_000, patience=8),
    ("nade", "mushrooms"): dict(steps=8000, patience=8),
    ("made", "mushrooms"): dict(steps=10_000, patience=8),
    ("transformer", "mushrooms"): dict(dim=32, lr=3e-3, steps=3000, patience=5),
    ("fvsbn", "digits"): dict(lr=3e-3),
    ("nade", "digits"): {},
    ("made", "digits"): {},
    ("pixelcnn", "digits"): dict(gated=True, layers=4, channels=32, steps=3000, validate_every=250, patience=4),
    ("transformer", "digits"): dict(dim=64, lr=3e-3),
    ("fvsbn", "mnist"): dict(lr=3e-3, steps=6000, validate_every=500, patience=6),
    ("nade", "mnist"): dict(steps=1500, validate_every=250, patience=4),
    ("made", "mnist"): dict(l2=1e-3, steps=10_000, validate_every=500, patience=6),
    ("pixelcnn", "mnist"): dict(layers=5, channels=32, batch_size=50, steps=2000, validate_every=250, patience=4),
}
FRESH_MASKS = dict(num_masks=1_000_000, order_agnostic=True, direct=True, steps=40_000, validate_every=400, patience=15)
VARIANTS = {  # name -> (model, dataset, options)
    "dna-made-masks": ("made", "dna", FRESH_MASKS),
    "mushrooms-made-masks": ("made", "mushrooms", FRESH_MASKS),
    "mushrooms-made-masks32": ("made", "mushrooms", dict(num_masks=32, order_agnostic=True, steps=40_000, patience=10)),
    "digits-made-masks": ("made", "digits", {**FRESH_MASKS, "steps": 20_000, "patience": 20}),
    "mnist-made-nol2": ("made", "mnist", dict(steps=10_000, validate_every=500, patience=6)),
}
NAMES = tuple(f"{d}-{m}" for m, d in RECIPES) + tuple(VARIANTS)


def get_config(name: str | None = None, *, model: str = "made", dataset: str = "digits") -> Config:
    """The recipe ``name`` (one of ``NAMES``: ``<dataset>-<model>`` or a variant), else the default of
    ``model`` on ``dataset``: its published row's recipe, or the base recipe where there is none."""
    if name is not None and name not in NAMES:
        raise ValueError(f"unknown config {name!r}; choose from {', '.join(NAMES)}")
    if name in VARIANTS:
        model, dataset, options = VARIANTS[name]
        return Config(model=model, dataset=dataset, **options)
    if name is not None:
        dataset, model = name.split("-", 1)
    return Config(model=model, dataset=dataset, **RECIPES.get((model, dataset), {}))


def recipe_name(config: Config) -> str | None:
    """The name of the recipe ``config`` equals (train-relevant fields), or None."""
    for name in NAMES:
        ref = get_config(name)
        if all(getattr(ref, f.name) == getattr(config, f.name) for f in dataclasses.fields(Config)
               if f.metadata["train"]):  # fmt: skip
            return name
    return None
