"""Sample quality of digit images: the Fréchet distance in the feature space of a fixed digit classifier
shipped with the package (``classifier_frechet_distance`` with ``feature_network("digits" | "mnist")``).

This follows the recipe of the Fréchet Inception Distance (Heusel et al. 2017) but is **not** FID: the
features come from :class:`DigitClassifier`, a small CNN, not from Inception-v3. Like Inception for FID,
the network is fixed: trained once, deterministically, by ``tools/train_fd_networks.py`` and stored as
float16 package data in ``genmodels/_weights/``, so a score means the same in every run and on every
machine (with the same sample sizes):

* ``"digits"``: scikit-learn's 8x8 digits; trained on the 1,437 training digits of ``experiments/images.py``
  (``gm.data.split(..., 1437, seed=0)``), 3,000 AdamW steps, seed 0; held-out accuracy 0.992 (357 of 360).
* ``"mnist"``: 28x28 MNIST (average-pooled to 14x14 inside the network); trained only on the 8,000-digit
  training split of the official MNIST *test* set (``gm.data.split(..., 8000, seed=0)``, the only MNIST
  digits available here), random shifts of up to 2 pixels, 2,000 AdamW steps, seed 0; accuracy on the
  2,000 held-out digits, against which the distance is computed, 0.993 (1,986 of 2,000).

:func:`feature_network_info` returns each network's full recipe and measured accuracy. Report a score with
its floor (the distance between as many real images and the reference set) and its ceiling (uniform
noise), as ``experiments/images.py`` does. :func:`train_classifier` trains such a network on other data.

Fit a Gaussian to the penultimate-layer features of each image set, N(mu_1, C_1) and N(mu_2, C_2); the
Fréchet (2-Wasserstein) distance between them is

    d^2 = ||mu_1 - mu_2||^2 + tr C_1 + tr C_2 - 2 tr (C_1^{1/2} C_2 C_1^{1/2})^{1/2}.

:func:`frechet_distance` evaluates it in float64 on the host: C_1^{1/2} from an eigendecomposition of
the symmetric C_1 (negative round-off eigenvalues clipped to 0), then the symmetric product
M = C_1^{1/2} C_2 C_1^{1/2} (symmetrised), whose eigenvalues are those of C_1 C_2, and
tr M^{1/2} = sum_i sqrt(max(lambda_i(M), 0)). This never forms a non-symmetric matrix square root, so it
stays real and accurate for singular covariances (fewer samples than feature dimensions). The returned
value is d^2 (the squared distance, as FID reports), clipped at 0 against round-off.

The estimate is biased upwards for finite samples; report it beside the same distance between two real
image sets of the same sizes (the real-vs-real baseline).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jaxtyping import Array, Float, Int, PRNGKeyArray

from genmodels.data import ArrayDataset
from genmodels.errors import ArgumentError
from genmodels.train import Logging, adamw, fit, warmup_cosine

__all__ = [
    "DigitClassifier",
    "accuracy",
    "classifier_frechet_distance",
    "classifier_loss",
    "feature_network",
    "feature_network_info",
    "features",
    "frechet_distance",
    "gaussian_fit",
    "train_classifier",
]


def _nhwc(images) -> np.ndarray | Array:
    """(N, H, W) or (N, H, W, C) images as NHWC."""
    if images.ndim == 3:
        return images[..., None]
    if images.ndim != 4:
        raise ArgumentError(f"images must have shape (N, H, W) or (N, H, W, C), got {tuple(images.shape)}.")
    return images


class DigitClassifier(nnx.Module):
    """A small CNN for grey digit images in NHWC layout (8x8, 28x28, ...), returning class logits.

    conv3x3(width) -> ReLU -> conv3x3(2 width, stride 2) -> ReLU -> conv3x3(2 width, stride 2) -> ReLU
    -> flatten -> Linear(feature_dim) -> ReLU [= :meth:`features`] -> Linear(num_classes).

    Args:
        image_shape: (H, W) or (H, W, C) of the inputs (fixes the flattened size).
        width: channels of the first convolution.
        feature_dim: size of the penultimate layer, the feature space of the Fréchet distance.
        num_classes: number of classes (10 digits).
        pool: average-pool the input by this factor first (2 for 28x28 MNIST: 4x cheaper, as accurate).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        width: int = 32,
        feature_dim: int = 64,
        num_classes: int = 10,
        *,
        pool: int = 1,
        rngs: nnx.Rngs,
    ):
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = shape + (1,)
        if len(shape) != 3 or min(shape) < 1:
            raise ArgumentError(f"image_shape must be (H, W) or (H, W, C) with positive sizes, got {image_shape!r}.")
        for name, value in (("width", width), ("feature_dim", feature_dim), ("num_classes", num_classes),
                            ("pool", pool)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"{name} must be an int >= 1, got {value!r}.")
        h, w, c = shape
        if h % pool or w % pool:
            raise ArgumentError(f"pool={pool} must divide the image size {h}x{w}.")
        self.image_shape, self.pool = shape, pool
        h, w = h // pool, w // pool
        self.conv1 = nnx.Conv(c, width, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(width, 2 * width, (3, 3), strides=2, rngs=rngs)
        self.conv3 = nnx.Conv(2 * width, 2 * width, (3, 3), strides=2, rngs=rngs)
        hh, ww = math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2)  # two 'SAME' stride-2 convolutions
        self.fc = nnx.Linear(hh * ww * 2 * width, feature_dim, rngs=rngs)
        self.head = nnx.Linear(feature_dim, num_classes, rngs=rngs)

    def features(self, x: Float[Array, "batch H W C"]) -> Float[Array, "batch feature_dim"]:
        """Penultimate-layer activations (after the ReLU)."""
        x = _nhwc(jnp.asarray(x))
        if tuple(x.shape[1:]) != self.image_shape:
            expected = ", ".join(map(str, self.image_shape))
            raise ArgumentError(f"DigitClassifier expects images of shape (batch, {expected}), got {tuple(x.shape)}.")
        if self.pool > 1:
            n, hh, ww, c = x.shape
            x = x.reshape(n, hh // self.pool, self.pool, ww // self.pool, self.pool, c).mean(axis=(2, 4))
        h = jax.nn.relu(self.conv1(x))
        h = jax.nn.relu(self.conv2(h))
        h = jax.nn.relu(self.conv3(h))
        return jax.nn.relu(self.fc(h.reshape(h.shape[0], -1)))

    def __call__(self, x: Float[Array, "batch H W C"]) -> Float[Array, "batch num_classes"]:
        return self.head(self.features(x))


def classifier_loss(model: DigitClassifier, batch, key: PRNGKeyArray, *, noise_std: float = 0.0):
    """Mean softmax cross-entropy on a batch (images, labels); a trainer ``loss_fn``.

    ``noise_std`` > 0 adds N(0, noise_std^2) to the images (a light augmentation that makes the features
    less sensitive to the small pixel noise of generated samples). Returns (loss, {"accuracy": ...}).
    """
    x, y = batch
    x = _nhwc(jnp.asarray(x))
    if noise_std:
        x = x + noise_std * jax.random.normal(key, x.shape, x.dtype)
    logits = model(x)
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}


def _batched(fn, model: nnx.Module, images, batch_size: int) -> np.ndarray:
    """Apply ``fn(model, x)`` in fixed-size chunks (the last one padded) under one jit; numpy output."""
    x = _nhwc(np.asarray(images, dtype=np.float32))
    n = x.shape[0]
    if n == 0:
        raise ArgumentError("images must hold at least one image.")
    if not np.all(np.isfinite(x)):
        raise ArgumentError("images contain NaN or inf values.")
    graphdef, state = nnx.split(model)
    apply = jax.jit(lambda st, xb: fn(nnx.merge(graphdef, st), xb))
    b = min(batch_size, n)
    out = []
    for lo in range(0, n, b):
        xb = x[lo : lo + b]
        pad = b - xb.shape[0]
        if pad:
            xb = np.concatenate([xb, np.repeat(xb[-1:], pad, axis=0)])
        out.append(np.asarray(apply(state, jnp.asarray(xb)))[: b - pad])
    return np.concatenate(out)


def features(model: DigitClassifier, images, batch_size: int = 500) -> np.ndarray:
    """Penultimate-layer features, shape (N, feature_dim), float64 numpy."""
    return _batched(lambda m, x: m.features(x), model, images, batch_size).astype(np.float64)


def accuracy(model: DigitClassifier, images, labels: Int[Array, " N"], batch_size: int = 500) -> float:
    """Fraction of images whose arg-max logit is the label."""
    logits = _batched(lambda m, x: m(x), model, images, batch_size)
    labels = np.asarray(labels)
    if labels.shape != logits.shape[:1]:
        raise ArgumentError(f"labels must have shape ({logits.shape[0]},), got {labels.shape}.")
    return float(np.mean(np.argmax(logits, -1) == labels))


def train_classifier(
    images,
    labels,
    *,
    key: PRNGKeyArray,
    steps: int = 1500,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    noise_std: float = 0.05,
    width: int = 32,
    feature_dim: int = 64,
    progress: bool = False,
) -> DigitClassifier:
    """Train a :class:`DigitClassifier` on (images, labels) with ``gm.train.fit`` (AdamW, cosine decay,
    no EMA) and return it. Deterministic given ``key`` and the data."""
    x = _nhwc(np.asarray(images, dtype=np.float32))
    y = np.asarray(labels, dtype=np.int32)
    if y.shape != x.shape[:1]:
        raise ArgumentError(f"labels must have shape ({x.shape[0]},), got {y.shape}.")
    num_classes = int(y.max()) + 1 if y.size else 1
    k_init, k_fit = jax.random.split(key)
    model = DigitClassifier(x.shape[1:], width, feature_dim, max(num_classes, 10),
                            rngs=nnx.Rngs(k_init))  # fmt: skip
    opt = adamw(warmup_cosine(lr, min(100, steps // 10), steps), weight_decay=weight_decay)
    loss = (lambda m, b, k: classifier_loss(m, b, k, noise_std=noise_std)) if noise_std else classifier_loss
    dataset = ArrayDataset((x, y), min(batch_size, x.shape[0]))
    fit(model, loss, dataset, key=k_fit, steps=steps, optimizer=opt, ema=None,
        log=Logging(every=max(steps, 1), progress=progress))  # fmt: skip
    return model


WEIGHTS = Path(__file__).resolve().parent / "_weights"
NETWORKS = ("digits", "mnist")  # the shipped networks: genmodels/_weights/<name>.npz


def _weights_path(name: str | Path) -> Path:
    if isinstance(name, str) and name in NETWORKS:
        return WEIGHTS / f"{name}.npz"
    path = Path(name)
    if path.suffix != ".npz" or not path.is_file():
        raise ArgumentError(
            f"feature network must be one of {NETWORKS} or the path of a .npz weight file, got {name!r}."
        )
    return path


def feature_network_info(name: str | Path = "digits") -> dict:
    """How the fixed network ``name`` was trained: the recipe (steps, batch, learning rate, augmentation),
    seed, data split, held-out accuracy (float16 weights), software versions. See ``tools/train_fd_networks.py``."""
    with np.load(_weights_path(name)) as f:
        return json.loads(str(f["meta"]))


@functools.cache
def _load(path: Path) -> tuple[dict, dict]:
    with np.load(path) as f:
        return json.loads(str(f["meta"])), {k: np.asarray(f[k], np.float32) for k in f.files if k != "meta"}


def feature_network(name: str | Path = "digits") -> DigitClassifier:
    """The fixed :class:`DigitClassifier` of the Fréchet distance, loaded from package data.

    ``"digits"``: for scikit-learn's 8x8 digits, images (N, 8, 8[, 1]); ``"mnist"``: for 28x28 MNIST
    digits. Both were trained once by ``tools/train_fd_networks.py`` on the training split of
    ``experiments/images.py`` only (1,437 digits, resp. 8,000 of the official MNIST test digits, split seed
    0), so the held-out images the distance is computed against were never seen; the float16 weights are
    stored in ``genmodels/_weights/<name>.npz`` and returned as float32. ``name`` may also be the path of
    such a file. :func:`feature_network_info` tells the recipe and the held-out accuracy.
    """
    meta, params = _load(_weights_path(name))
    r = meta["recipe"]
    model = DigitClassifier(meta["image_shape"], r["width"], r["feature_dim"], 10, pool=r.get("pool", 1),
                            rngs=nnx.Rngs(0))  # fmt: skip
    state = nnx.state(model, nnx.Param)
    missing = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state)} - set(params)
    if missing:
        raise ArgumentError(f"weight file of {name!r} lacks the parameters {sorted(missing)}.")
    loaded = jax.tree_util.tree_map_with_path(lambda p, v: jnp.asarray(params[jax.tree_util.keystr(p)]), state)
    nnx.update(model, loaded)
    return model


def gaussian_fit(feats: Float[np.ndarray, "n d"]) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of the rows of ``feats``, float64. Needs n >= 2."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ArgumentError(f"features must have shape (n, d) with n >= 2, got {f.shape}.")
    if not np.all(np.isfinite(f)):
        raise ArgumentError("features contain NaN or inf values.")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(0.5 * (c + c.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Squared Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (module docstring), in float64.

    Covariances must be symmetric positive semi-definite (d, d), means (d,).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or c1.shape != (d, d) or c2.shape != (d, d):
        raise ArgumentError(f"need means of shape (d,) and covariances (d, d) with one d; got {mu1.shape}, "
                         f"{c1.shape}, {mu2.shape}, {c2.shape}.")  # fmt: skip
    for name, a in (("mu1", mu1), ("cov1", c1), ("mu2", mu2), ("cov2", c2)):
        if not np.all(np.isfinite(a)):
            raise ArgumentError(f"{name} contains NaN or inf values.")
    s1 = _psd_sqrt(c1)
    m = s1 @ c2 @ s1
    eig = np.linalg.eigvalsh(0.5 * (m + m.T))
    tr_sqrt = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    dist = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt)
    return max(dist, 0.0)


def classifier_frechet_distance(classifier: DigitClassifier, x, y, batch_size: int = 500) -> float:
    """Squared Fréchet distance between Gaussian fits of ``classifier``'s penultimate features of the image
    sets x and y (each (N, H, W) or (N, H, W, C), N >= 2). Not FID: see the module docstring."""
    return frechet_distance(*gaussian_fit(features(classifier, x, batch_size)),
                            *gaussian_fit(features(classifier, y, batch_size)))  # fmt: skip
