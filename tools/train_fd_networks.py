"""Train the fixed feature networks of the classifier-Fréchet distance and write them as package data.

    .venv/bin/python tools/train_fd_networks.py                       # both networks (digits: ~1.5 min, MNIST: ~15 min)
    .venv/bin/python tools/train_fd_networks.py --only digits --check  # retrain one and compare with the shipped file

The networks are ``gm.classifier_metric.DigitClassifier`` CNNs trained once, on a CPU, with ``gm.train.fit``
(AdamW, warm-up + cosine decay, no EMA) on the *training* split that ``experiments/images.py`` uses
(``gm.data.split(..., seed=0)``): 1,437 of scikit-learn's 8x8 digits, resp. 8,000 of the 10,000 official
MNIST test digits in ``../shared/data/mnist`` (the only MNIST digits available here). Augmentation: a random
shift of up to ``shift`` pixels (the border filled with background -1) and N(0, noise_std^2) pixel noise.
The held-out split (360 resp. 2,000 images) is never seen in training; the Fréchet distance is computed on
it. Parameters are stored as float16 in ``genmodels/_weights/<name>.npz`` with a ``meta`` JSON entry (the
recipe, seed, steps, held-out accuracy of the float16 network, software versions) that
``gm.classifier_metric.feature_network(name).meta`` returns. Training is deterministic on one machine
(fixed key, fixed data order); other XLA builds may differ in the last bits, which is why the weights are
shipped rather than retrained.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RECIPES = {
    "digits": dict(steps=3000, batch=128, lr=2e-3, weight_decay=1e-4, noise_std=0.05, shift=0, width=32,
                   feature_dim=64, seed=0, split_seed=0, train_images=1437),
    "mnist": dict(steps=2000, batch=128, lr=2e-3, weight_decay=1e-4, noise_std=0.05, shift=2, width=32,
                  feature_dim=64, pool=2, seed=0, split_seed=0, train_images=8000),
}  # fmt: skip
TARGET = {"digits": 0.99, "mnist": 0.985}


def load_split(name: str, data_path: str):
    import genmodels as gm

    r = RECIPES[name]
    if name == "digits":
        x, y = gm.data.load_digits("NHWC")
    else:
        x, y = gm.data.load_mnist(data_path, "t10k", "NHWC")
    return gm.data.split((x, y), r["train_images"], seed=r["split_seed"])


def augmented_loss(noise_std: float, shift: int):
    """Cross-entropy on images shifted by up to ``shift`` pixels (background fill) plus pixel noise."""
    import jax
    import jax.numpy as jnp

    from genmodels import classifier_metric as cm

    def one(img, key):
        h, w, _ = img.shape
        padded = jnp.pad(img, ((shift, shift), (shift, shift), (0, 0)), constant_values=-1.0)
        dy, dx = jax.random.randint(key, (2,), 0, 2 * shift + 1)
        return jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, img.shape[2]))

    def loss(model, batch, key):
        x, y = batch
        k_shift, k_noise = jax.random.split(key)
        x = jax.vmap(one)(x, jax.random.split(k_shift, x.shape[0]))
        return cm.classifier_loss(model, (x, y), k_noise, noise_std=noise_std)

    return loss


def train(name: str, data_path: str, progress: bool):
    import jax
    import numpy as np
    from flax import nnx

    import genmodels as gm
    from genmodels import classifier_metric as cm

    r = RECIPES[name]
    (xtr, ytr), (xte, yte) = load_split(name, data_path)
    k_init, k_fit = jax.random.split(jax.random.key(r["seed"]))
    model = cm.DigitClassifier(xtr.shape[1:], r["width"], r["feature_dim"], 10, pool=r.get("pool", 1),
                               rngs=nnx.Rngs(k_init))  # fmt: skip
    opt = gm.train.adamw(gm.train.warmup_cosine(r["lr"], 100, r["steps"]), weight_decay=r["weight_decay"])
    t = time.perf_counter()
    gm.train.fit(model, augmented_loss(r["noise_std"], r["shift"]), gm.data.ArrayDataset((xtr, ytr), r["batch"]),
                 key=k_fit, steps=r["steps"], optimizer=opt, ema=None,
                 log=gm.train.Logging(every=r["steps"], progress=progress),
                 execution=gm.train.Execution(steps_per_call=1))  # fmt: skip
    seconds = time.perf_counter() - t
    params = {jax.tree_util.keystr(p): np.asarray(v, np.float16)
              for p, v in jax.tree_util.tree_leaves_with_path(nnx.state(model, nnx.Param))}  # fmt: skip
    meta = {"name": name, "recipe": r, "script": "tools/train_fd_networks.py", "train_seconds": round(seconds, 1),
            "float32_test_accuracy": cm.accuracy(model, xte, yte), "test_images": int(len(xte)),
            "jax": jax.__version__, "backend": jax.default_backend(), "image_shape": list(xtr.shape[1:])}  # fmt: skip
    return params, meta, (xte, yte)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=tuple(RECIPES), help="train only this network (default: both)")
    parser.add_argument("--data-path", default="../shared/data/mnist", help="folder of the MNIST IDX files "
                        "(default: ../shared/data/mnist)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "genmodels" / "_weights",
                        help="folder of the weight files (default: genmodels/_weights of this checkout)")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="compare with the existing file instead of writing")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    import numpy as np

    from genmodels import classifier_metric as cm

    status = 0
    for name in (args.only,) if args.only else tuple(RECIPES):
        params, meta, (xte, yte) = train(name, args.data_path, not args.quiet)
        path = args.out / f"{name}.npz"
        if args.check:
            old = np.load(path)
            same = all(np.array_equal(old[k], v) for k, v in params.items())
            print(f"{name}: retrained parameters {'equal' if same else 'DIFFER from'} {path}")
            status |= not same
            continue
        meta["float16_test_accuracy"] = None
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, meta=np.asarray(json.dumps(meta)), **params)
        net = cm.feature_network(path)
        meta["float16_test_accuracy"] = cm.accuracy(net, xte, yte)
        np.savez_compressed(path, meta=np.asarray(json.dumps(meta)), **params)
        ok = meta["float16_test_accuracy"] >= TARGET[name]
        print(f"{name}: held-out accuracy {meta['float16_test_accuracy']:.4f} (float16; target {TARGET[name]}), "
              f"{meta['train_seconds']:.0f} s, {path.stat().st_size / 1e3:.0f} kB -> {path}")  # fmt: skip
        status |= not ok
    return status


if __name__ == "__main__":
    sys.exit(main())
