"""Grey-scale image data sets read from local files (nothing is downloaded).

Layout: images are returned as float32 arrays of shape ``(N, H, W)`` (one grey channel, no channel axis)
by default; ``layout="NHWC"`` (flax convolutions) or ``"NCHW"`` add the channel axis. Grey values are mapped
affinely to ``[-1, 1]`` (0 -> -1, white -> +1); labels are int32 of shape ``(N,)``.

* :func:`load_digits`: scikit-learn's 8x8 digits (1,797 images shipped inside scikit-learn, values 0..16).
* :func:`load_mnist`: MNIST from IDX files at any path (``{split}-images-idx3-ubyte`` and
  ``{split}-labels-idx1-ubyte``, gzip-compressed or raw), values 0..255.
* :func:`binarize`: {0, 1} images, by threshold 0.5 on intensity ``(x + 1) / 2`` or stochastically
  (Bernoulli with that intensity, with a key).
* :func:`split`: a fixed-seed random split of examples (e.g. of the 10,000 MNIST test digits).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from genmodels.errors import ArgumentError, ArgumentTypeError, GenmodelsError

Layout = Literal["NHW", "NHWC", "NCHW"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip


class DataFormatError(GenmodelsError, ValueError):
    """A data file exists but is not what it claims to be (bad magic number, truncated, wrong shape)."""


def _to_layout(images: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHW":
        return images
    if layout == "NHWC":
        return images[..., None]
    if layout == "NCHW":
        return images[:, None]
    raise ArgumentError(f"unknown layout {layout!r}; expected one of ('NHW', 'NHWC', 'NCHW').")


def _grey(raw: np.ndarray, vmax: float) -> np.ndarray:
    return (raw.astype(np.float32) * np.float32(2.0 / vmax) - np.float32(1.0)).astype(np.float32)


def load_digits(layout: Layout = "NHW", *, return_labels: bool = True):
    """scikit-learn's 8x8 digits: images ``(1797, 8, 8)`` float32 in [-1, 1] (value / 16 * 2 - 1) and labels.

    Returns ``(images, labels)`` (or only the images when ``return_labels=False``) as numpy arrays.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    images = _to_layout(_grey(np.asarray(bunch.images), 16.0), layout)
    labels = np.asarray(bunch.target, dtype=np.int32)
    return (images, labels) if return_labels else images


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzip or raw; detected from the content), checking magic number and size.

    IDX: two zero bytes, a dtype byte (0x08 = uint8, ...), the number of dimensions ``d``, then ``d``
    big-endian uint32 sizes and the data in row-major order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataFormatError(f"{path}: gzip stream is corrupt or truncated ({err}).") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataFormatError(f"{path}: bad IDX magic number {raw[:4].hex() or '(empty file)'}; "
                              "expected 0000 <dtype byte> <ndim>, e.g. 00000803 for MNIST images.")  # fmt: skip
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header}).")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataFormatError(f"{path}: IDX size mismatch: header says shape {shape} ({expected} bytes in all), "
                              f"file holds {len(raw)} bytes (truncated or corrupt).")  # fmt: skip
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"MNIST file missing: expected {root / stem} or {root / (stem + '.gz')} "
                            "(IDX format, as distributed by LeCun et al.).")  # fmt: skip


def load_mnist(path: str | Path, split: str = "t10k", layout: Layout = "NHW", *, return_labels: bool = True):
    """MNIST from IDX files in the folder ``path``: images ``(N, 28, 28)`` float32 in [-1, 1] and labels.

    Args:
        path: folder holding ``{split}-images-idx3-ubyte[.gz]`` and ``{split}-labels-idx1-ubyte[.gz]``.
        split: file prefix, ``"t10k"`` (10,000 test digits) or ``"train"`` (60,000).
        layout: ``"NHW"`` (default), ``"NHWC"`` or ``"NCHW"``.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {root} (expected a folder holding "
                                f"{split}-images-idx3-ubyte.gz and {split}-labels-idx1-ubyte.gz).")  # fmt: skip
    images = read_idx(_find_idx(root, f"{split}-images-idx3-ubyte"))
    labels = read_idx(_find_idx(root, f"{split}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFormatError(f"MNIST images must be uint8 of shape (N, H, W), got {images.dtype} {images.shape}.")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataFormatError(f"MNIST labels must have shape ({images.shape[0]},), got {labels.shape}.")
    if labels.size and labels.max() > 9:
        raise DataFormatError(f"MNIST labels must be digits 0..9, found {int(labels.max())}.")
    out = _to_layout(_grey(images, 255.0), layout)
    return (out, labels.astype(np.int32)) if return_labels else out


def binarize(images: Float[Array, ...], key: PRNGKeyArray | None = None) -> Float[Array, ...]:
    """{0, 1} float32 images from grey images in [-1, 1] with intensity ``p = (x + 1) / 2``.

    Without a key: ``p > 0.5`` (deterministic threshold). With a key: ``Bernoulli(p)`` (stochastic
    binarisation; pass a fresh key per epoch for dynamic binarisation).
    """
    x = jnp.asarray(images)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ArgumentTypeError(f"images must be floating grey values in [-1, 1], got dtype {x.dtype}.")
    if not isinstance(x, jax.core.Tracer):
        lo, hi = float(jnp.min(x)), float(jnp.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
            raise ArgumentError(f"images must be finite grey values in [-1, 1], got range [{lo}, {hi}].")
    p = (x + 1.0) / 2.0
    if key is None:
        return (p > 0.5).astype(jnp.float32)
    return jax.random.bernoulli(key, jnp.clip(p, 0.0, 1.0)).astype(jnp.float32)


def split(arrays: PyTree, sizes: tuple[int, ...] | int, *, seed: int = 0) -> list[PyTree]:
    """Split examples (the leading axis of every leaf) at random with a fixed ``seed``.

    ``sizes`` are the sizes of the first parts; the last part takes the rest, e.g.
    ``train, test = split((x, y), 8000, seed=0)``. The permutation is numpy's PCG64 with ``seed``, so the
    split is the same on every machine.
    """
    leaves, treedef = jax.tree.flatten(arrays)
    if not leaves:
        raise ArgumentError("arrays must hold at least one array.")
    n = np.shape(leaves[0])[0] if np.ndim(leaves[0]) else 0
    if any(np.ndim(a) < 1 or np.shape(a)[0] != n for a in leaves):
        raise ArgumentError(f"all arrays must share the leading dimension; got {[np.shape(a) for a in leaves]}.")
    sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else tuple(sizes)
    if any(int(s) < 0 for s in sizes) or sum(sizes) > n:
        raise ArgumentError(f"sizes {sizes} must be non-negative and sum to at most N={n}.")
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum((0, *sizes, n - sum(sizes)))
    return [
        jax.tree.unflatten(treedef, [np.asarray(a)[perm[lo:hi]] for a in leaves])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False)
    ]
