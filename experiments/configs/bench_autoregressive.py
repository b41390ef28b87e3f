"""The recipe of ``experiments/bench_autoregressive.py``: ancestral-sampling speed of the autoregressive
models (the table of docs/benchmarks.md, run on a GPU). Model sizes: NADE H = 500, MADE one layer of 500,
Transformer width 64 with 4 heads and 2 blocks, PixelCNN 6 layers x 64 channels (``SIZES``)."""

from __future__ import annotations

import dataclasses

from experiments.cli import OutputOptions, param, validate

MODELS = ("fvsbn", "nade", "made", "pixelcnn", "gated_pixelcnn", "transformer")
SIZES = {  # the fields of configs.binary_density.Config that size each model
    "fvsbn": {}, "nade": {"hidden": (500,)}, "made": {"hidden": (500,)},
    "transformer": {"dim": 64, "heads": 4, "layers": 2},
    "pixelcnn": {"channels": 64, "layers": 6}, "gated_pixelcnn": {"channels": 64, "layers": 6, "gated": True},
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config:
    models: tuple[str, ...] = param(MODELS, "models to time", choices=MODELS, noun="model")
    n_dims: int = param(784, "bits per sample (a square image for PixelCNN)", ge=1)
    batch: int = param(256, "samples per call", ge=1)
    pixelcnn_batch: int | None = param(None, "samples per call for PixelCNN (default --batch)", ge=1)
    ratio_dims: int = param(784, "bits per sample of the incremental-vs-naive runs (NADE, Transformer)", ge=1)
    ratio_batch: int | None = param(None, "samples per call of the incremental-vs-naive runs (default --batch)", ge=1)
    repeats: int = param(3, "timed runs per measurement (the median is reported)", ge=1)

    def __post_init__(self):
        validate(self)
        side = round(self.n_dims**0.5)
        if any("pixelcnn" in m for m in self.models) and side * side != self.n_dims:
            raise ValueError(f"--n-dims {self.n_dims}: PixelCNN needs a square number of dims")


NAMES: tuple[str, ...] = ()  # no named recipes: the selectors choose


def get_config(name: str | None = None) -> Config:
    return Config()


Options = OutputOptions  # --out, --resume, --overwrite, --quiet
