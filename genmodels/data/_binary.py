"""Binary data sets for the autoregressive models: UCI benchmark ``.npz`` files, binarised MNIST and digits.

* :func:`load_binary_npz`: any ``.npz`` with ``train_data``, ``valid_data``, ``test_data`` (N_split, D) of
  0/1 values, e.g. the ``dna`` (180 dims; 1,400 / 600 / 1,186) and ``mushrooms`` (112 dims; 2,000 / 500 /
  5,624) splits of Larochelle and Murray (2011).
* :func:`binary_mnist`: the 10,000 official MNIST *test* digits (the only ones at hand), split 8,000 train /
  1,000 valid / 1,000 test by a fixed seed and binarised by threshold 0.5 or, once and with a fixed key,
  stochastically. Numbers on this split are not comparable with the standard 50k/10k/10k binarised MNIST.
* :func:`binary_digits`: scikit-learn's 8x8 digits binarised at intensity 0.5, split 1,297 / 250 / 250.

Every loader returns a :class:`BinarySplits` (numpy float32 arrays, images as ``(N, H, W)``) with a
``description`` naming the source and split, to be copied into every reported result.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import numpy as np

from genmodels.data._images import binarize, load_digits, load_mnist, split
from genmodels.errors import ArgumentError

__all__ = ["BinarySplits", "load_binary_npz", "binary_mnist", "binary_digits", "UCI_BINARY"]

UCI_BINARY = ("dna", "mushrooms")
_KEYS = ("train_data", "valid_data", "test_data")


class BinarySplits(NamedTuple):
    """train / valid / test arrays of 0/1 float32 values and a one-line description of their origin."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    description: str


def _check_binary(name: str, a: np.ndarray, source: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size == 0:
        raise ArgumentError(f"{source}: {name} is empty.")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ArgumentError(f"{source}: {name} must be numeric 0/1, got dtype {a.dtype}.")
    ok = (a == 0) | (a == 1)
    if not np.all(ok):
        raise ArgumentError(
            f"{source}: {name} must be binary (0/1), found values such as {np.unique(a[~ok])[:3].tolist()}."
        )
    return a.astype(np.float32)


def load_binary_npz(path: str | Path) -> BinarySplits:
    """Read ``train_data``, ``valid_data`` and ``test_data`` (each (N, D), binary) from an ``.npz`` file.

    Raises FileNotFoundError for a missing file and ValueError when an array is missing, not 2-D, empty,
    not binary, or when the splits disagree on D.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"binary data file not found: {path} (expected an .npz with {', '.join(_KEYS)}).")
    if not zipfile.is_zipfile(path):
        raise ArgumentError(
            f"{path} is not an .npz archive (a zip of .npy arrays, as written by numpy.savez); a binary data file "
            f"needs the arrays {list(_KEYS)}."
        )
    import warnings

    with warnings.catch_warnings():  # the UCI files were written by Python 2's numpy
        warnings.simplefilter("ignore", UserWarning)
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in _KEYS if k not in f.files]
            if missing:
                raise ArgumentError(
                    f"{path}: missing array(s) {missing}; a binary data file needs {list(_KEYS)} "
                    f"(found {sorted(f.files)})."
                )
            arrays = [_check_binary(k, f[k], str(path)) for k in _KEYS]
    dims = {a.shape[1] if a.ndim == 2 else None for a in arrays}
    if any(a.ndim != 2 for a in arrays) or len(dims) != 1:
        raise ArgumentError(f"{path}: the splits must be 2-D (N, D) with one D, got {[a.shape for a in arrays]}.")
    n = [a.shape[0] for a in arrays]
    desc = f"{path.name}: {n[0]} train / {n[1]} valid / {n[2]} test, {arrays[0].shape[1]} binary dims (file splits)"
    return BinarySplits(*arrays, desc)


def binary_mnist(
    path: str | Path,
    binarization: Literal["threshold", "stochastic"] = "threshold",
    *,
    split_seed: int = 0,
    binarize_seed: int = 0,
) -> BinarySplits:
    """Binarised MNIST from the 10,000 official test digits in the IDX folder ``path``.

    Args:
        path: folder with ``t10k-images-idx3-ubyte[.gz]`` (and labels).
        binarization: ``"threshold"`` (intensity > 0.5) or ``"stochastic"`` (Bernoulli(intensity), drawn
            once with ``jax.random.key(binarize_seed)``: a fixed data set).
        split_seed: seed of the 8,000 / 1,000 / 1,000 split (``genmodels.data.split``).
    """
    if binarization not in ("threshold", "stochastic"):
        raise ArgumentError(f"binarization must be 'threshold' or 'stochastic', got {binarization!r}.")
    images = load_mnist(path, "t10k", return_labels=False)
    key = jax.random.key(binarize_seed) if binarization == "stochastic" else None
    bits = np.asarray(binarize(images, key))
    train, valid, test = split(bits, (8000, 1000), seed=split_seed)
    desc = (
        f"MNIST official test digits (10,000) split 8000 train / 1000 valid / 1000 test with seed {split_seed}, "
        f"{binarization} binarisation"
        + (f" (seed {binarize_seed})" if key is not None else "")
        + "; not the standard 50k/10k/10k binarised MNIST"
    )
    return BinarySplits(train, valid, test, desc)


def binary_digits(*, split_seed: int = 0) -> BinarySplits:
    """scikit-learn's 1,797 8x8 digits, thresholded at intensity 0.5 (value > 8 of 16), split 1297/250/250."""
    bits = np.asarray(binarize(load_digits(return_labels=False)))
    train, valid, test = split(bits, (1297, 250), seed=split_seed)
    desc = f"sklearn 8x8 digits (1,797) thresholded at 0.5, split 1297 train / 250 valid / 250 test, seed {split_seed}"
    return BinarySplits(train, valid, test, desc)
