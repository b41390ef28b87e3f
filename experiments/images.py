"""EDM diffusion and flow matching on grey digit images: 8x8 digits (default) or MNIST.

    python experiments/images.py --family edm --dataset digits --out runs/images/edm_digits
    python experiments/images.py --family fm  --dataset mnist --data-path ../shared/data/mnist --out DIR

Trains ``gm.models.EDMModel`` + ``gm.nets.UNet`` with ``gm.losses.edm_loss`` (``--family edm``) or a
velocity ``gm.models.PathModel`` on the Linear path + UNet with ``gm.losses.cfm_loss`` (``--family fm``),
then on the EMA model:

* samples with 35-NFE Heun (karras(18)) and 10- and 20-NFE DPM-Solver++(2M) (karras(10), karras(20)),
  all from the same initial noise, and saves a grid of each (``samples_<sampler>.png``);
* the classifier-Fréchet distance (``gm.classifier_metric``; a small CNN trained here on the same training
  split, *not* Inception FID) of each sampler's samples against the held-out images, beside the same
  distance for as many real training images (``baseline_real_vs_real``) and for uniform noise;
* test bits/dim with ``gm.log_prob`` (probability-flow ODE; Hutchinson's trace estimator with one
  Rademacher probe per image by default, ``--bpd-trace exact`` for the exact divergence, affordable for
  64-D digits on an accelerator) and ``gm.bits_per_dim``.

Data and splits. Digits: scikit-learn's 1,797 images, 1,437 for training and 360 held out (fixed seed
``--split-seed``, numpy PCG64 permutation, ``gm.data.split``). MNIST: only the 10,000 official *test*
digits (t10k IDX files) exist here, so they are split 8,000 train / 2,000 held out with the same fixed
seed; every number from this script on MNIST is on that split, not on the official train/test split.

Dequantisation. Pixels take L discrete levels (digits: 17 levels 0..16, MNIST: 256) spaced w apart in
[-1, 1] (w = 2/16 resp. 2/255). The model is trained on uniformly dequantised images x + w (u - 1/2),
u ~ U[0, 1)^D (fresh each step), and bits/dim is measured on held-out images dequantised the same way
(one fixed draw): bpd = (-log p(y) + D log(1/w)) / (D ln 2), i.e. ``gm.bits_per_dim(lp, D, L, L w)``.
By Jensen this is an upper bound on the discrete model's -log2 P(x) / D in expectation over u.

Writes into ``--out``: config.json, metrics.jsonl and checkpoints/ (from ``gm.train.fit``; ``--resume``
continues; a finished run is redone only with ``--overwrite``, see ``experiments/common.py``), results.json,
samples_*.png, real_test.png and loss.png.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``experiments`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import genmodels as gm
from experiments import common
from genmodels import classifier_metric as cm

DATASETS = {
    # name: (levels, train size of the fixed split, UNet channel_mult)
    "digits": (17, 1437, (1, 2)),
    "mnist": (256, 8000, (1, 2, 2)),
}
DEFAULTS = {  # per dataset; digits' are sized for a few minutes on 2 CPU cores, MNIST's are slow on a CPU
    "digits": dict(steps=2000, batch=128, base=16, num_samples=1000, bpd_images=360,
                   bpd_trace="hutchinson", classifier_steps=500),
    "mnist": dict(steps=4000, batch=128, base=32, num_samples=2000, bpd_images=500,
                  bpd_trace="hutchinson", classifier_steps=1500),
}  # fmt: skip


def sampler_table():
    """The compared samplers, all on EDM's Karras grid (sigma in [0.002, 80], rho = 7)."""
    S = gm.schedules
    return {
        "heun_35": gm.samplers.Heun(S.karras(18)),
        "dpmpp2m_10": gm.samplers.DPMSolverPP2M(S.karras(10)),
        "dpmpp2m_20": gm.samplers.DPMSolverPP2M(S.karras(20)),
    }


def load_data(args):
    levels, n_train, _ = DATASETS[args.dataset]
    if args.dataset == "digits":
        x, y = gm.data.load_digits("NHWC")
        note = (f"scikit-learn 8x8 digits (1,797 images): {n_train} train / {len(x) - n_train} held out, "
                f"fixed split seed {args.split_seed}")  # fmt: skip
    else:
        x, y = gm.data.load_mnist(args.data_path, "t10k", "NHWC")
        note = (f"MNIST: only the 10,000 official TEST digits are available here ({args.data_path}); they are "
                f"split {n_train} train / {len(x) - n_train} held out with fixed seed {args.split_seed}. Not the "
                "official train/test protocol.")  # fmt: skip
    (xtr, ytr), (xte, yte) = gm.data.split((x, y), n_train, seed=args.split_seed)
    return dict(train=(xtr, ytr), test=(xte, yte), levels=levels, bin_width=2.0 / (levels - 1), note=note)


def build_model(args, image_shape):
    _, _, mult = DATASETS[args.dataset]
    net = gm.nets.UNet(image_shape[-1], base=args.base, channel_mult=mult, num_res_blocks=1,
                       num_classes=10 if args.class_conditional else None, rngs=nnx.Rngs(args.seed))  # fmt: skip
    if args.family == "edm":
        return gm.models.EDMModel(net, sigma_data=0.5), gm.losses.edm_loss
    return gm.models.PathModel(net, gm.paths.Linear(), gm.denoisers.Velocity()), gm.losses.cfm_loss


def dequantized(loss_fn, bin_width: float):
    """``loss_fn`` on uniformly dequantised images x + w (u - 1/2), u ~ U[0, 1) drawn from the step's key."""

    def wrapped(model, batch, key):
        x0, labels = gm.losses.split_batch(batch)
        k_u, k_loss = jax.random.split(key)
        x0 = x0 + bin_width * (jax.random.uniform(k_u, x0.shape, x0.dtype) - 0.5)
        return loss_fn(model, x0 if labels is None else (x0, labels), k_loss)

    return wrapped


def generate(model, sampler, key, n, image_shape, args):
    """n samples (numpy) and the NFE spent; guided by classifier-free guidance when class conditional."""
    labels = None
    if args.class_conditional:
        labels = jnp.arange(n, dtype=jnp.int32) % 10
        model = gm.guidance.ClassifierFree(model, labels, scale=args.guidance)
    sol = gm.solve(model, sampler, key, (n, *image_shape))
    return np.asarray(sol.samples), int(sol.nfe), labels


def bits_per_dim(model, images, key, data, args):
    """Mean and standard error of test bits/dim over dequantised held-out images (module docstring)."""
    w, levels = data["bin_width"], data["levels"]
    x = np.asarray(images[: args.bpd_images])
    k_deq, k_probe = jax.random.split(key)
    y = x + w * (np.asarray(jax.random.uniform(k_deq, x.shape, jnp.float32)) - 0.5)
    dims = int(np.prod(x.shape[1:]))
    b = min(args.bpd_batch, len(y))
    out = []
    for i, lo in enumerate(range(0, len(y), b)):
        yb = y[lo : lo + b]
        pad = b - len(yb)
        if pad:
            yb = np.concatenate([yb, yb[:pad]])
        lp = gm.log_prob(model, jnp.asarray(yb), jax.random.fold_in(k_probe, i), trace=args.bpd_trace,
                         num_probes=args.bpd_probes, rtol=args.bpd_tol, atol=args.bpd_tol)  # fmt: skip
        out.append(np.asarray(gm.bits_per_dim(lp, dims, levels, levels * w))[: b - pad])
    bpd = np.concatenate(out)
    return {
        "mean": float(bpd.mean()),
        "stderr": float(bpd.std(ddof=1) / math.sqrt(len(bpd))) if len(bpd) > 1 else None,
        "num_images": int(len(bpd)),
        "trace": args.bpd_trace + (f" ({args.bpd_probes} Rademacher probes)" if args.bpd_trace == "hutchinson" else ""),
        "tolerance": args.bpd_tol,
        "dequantization": f"uniform, {levels} levels, bin width {w:.6g} in [-1, 1] units; bpd = "
                          "(-log p(y) + D log(1/w)) / (D ln 2)",
        "model": "unconditional (null label)" if args.class_conditional else "unconditional",
    }  # fmt: skip


def mosaic(images: np.ndarray, cols: int) -> np.ndarray:
    """(N, H, W[, 1]) in [-1, 1] -> one [0, 1] grey picture with 1-pixel gaps, small images enlarged."""
    images = (np.clip(images.reshape(images.shape[:3]), -1, 1) + 1) / 2
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), 0.5, np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = images[k]
    scale = max(1, 56 // h)
    return np.kron(out, np.ones((scale, scale), np.float32))


def save_pictures(out: Path, grids: dict, history: list) -> None:
    plt = common.pyplot()
    for name, images in grids.items():
        plt.imsave(out / f"{name}.png", mosaic(images[:100], 10), cmap="gray", vmin=0, vmax=1)
    common.plot_losses({"training loss": history}, out / "loss.png")


OWNED = ("results.json", "results.json.tmp", "config.json", "metrics.jsonl", "checkpoints", "loss.png", "real_test.png",
         *(f"samples_{name}.png" for name in ("heun_35", "dpmpp2m_10", "dpmpp2m_20")))  # fmt: skip
TRAIN_KEYS = ("family", "dataset", "batch", "class_conditional", "label_dropout", "base", "lr", "warmup", "ema",
              "seed", "split_seed")  # fmt: skip


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=("edm", "fm"), default="edm")
    p.add_argument("--dataset", choices=tuple(DATASETS), default="digits")
    p.add_argument("--data-path", default="../shared/data/mnist", help="folder of the MNIST IDX files")
    common.add_run_args(p, default_steps=None)  # --out --steps --checkpoint-every --resume --overwrite --seed --quiet
    pi, pf = common.positive_int, common.positive_float
    p.add_argument("--batch", type=pi, help="batch size (128)")
    p.add_argument("--class-conditional", action="store_true", help="UNet with labels, trained with label dropout")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (needs --class-conditional; 1.0)")
    p.add_argument("--label-dropout", type=common.unit_interval, default=0.1)
    p.add_argument("--base", type=pi, help="UNet base channels (digits 16, mnist 32)")
    p.add_argument("--lr", type=pf, default=1e-3)
    p.add_argument("--warmup", type=common.nonnegative_int, default=200)
    p.add_argument("--ema", type=common.unit_interval, default=0.999,
                   help="EMA decay (default 0.999), warmed up as min(ema, (1 + s) / (10 + s)) after s steps")
    p.add_argument("--split-seed", type=common.nonnegative_int, default=0)
    p.add_argument("--num-samples", type=pi, help="samples per sampler for the Fréchet distance")
    p.add_argument("--bpd-images", type=pi, help="held-out images for bits/dim")
    p.add_argument("--bpd-batch", type=pi, default=128)
    p.add_argument("--bpd-trace", choices=("exact", "hutchinson"), help="divergence estimator (hutchinson)")
    p.add_argument("--bpd-probes", type=pi, default=1)
    p.add_argument("--bpd-tol", type=pf, default=1e-5, help="rtol = atol of the log-likelihood ODE solve")
    p.add_argument("--classifier-steps", type=pi)
    p.add_argument("--steps-per-call", type=pi, default=None,
                   help="train steps per compiled call (default: 1 on a CPU, where XLA runs convolutions inside "
                        "a loop body many times slower (jax-ml/jax#12868); 10 on an accelerator)")
    args = p.parse_args(argv)
    for name, value in DEFAULTS[args.dataset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.guidance is None:
        args.guidance = 1.0
    elif not args.class_conditional:
        p.error("--guidance needs --class-conditional.")
    if not math.isfinite(args.guidance):
        p.error("--guidance must be finite.")
    if args.batch > DATASETS[args.dataset][1]:
        p.error(f"--batch {args.batch} exceeds the {DATASETS[args.dataset][1]} training images.")
    if args.num_samples < 2:
        p.error("--num-samples must be >= 2 (a covariance is fitted).")
    if args.dataset == "mnist" and not Path(args.data_path).is_dir():
        p.error(f"--data-path {args.data_path} is not a folder holding the MNIST IDX files.")
    try:
        common.prepare_run_dir(args.out, resume=args.resume, overwrite=args.overwrite, owned=OWNED,
                               config={k: getattr(args, k) for k in TRAIN_KEYS})  # fmt: skip
    except common.RunDirError as err:
        p.error(str(err))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0 = time.perf_counter()
    out = Path(args.out)
    data = load_data(args)
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    image_shape = tuple(xtr.shape[1:])
    model, loss_fn = build_model(args, image_shape)
    loss_fn = dequantized(loss_fn, data["bin_width"])
    if args.class_conditional:
        loss_fn = gm.losses.with_label_dropout(loss_fn, args.label_dropout, 10)
    arrays = (xtr, ytr) if args.class_conditional else xtr
    dataset = gm.data.ArrayDataset(arrays, args.batch)
    train_config = {k: getattr(args, k) for k in TRAIN_KEYS}
    optimizer = gm.train.adamw(args.lr, warmup=args.warmup)
    key = jax.random.key(args.seed)
    k_fit, k_clf, k_sample, k_bpd = jax.random.split(key, 4)

    res = gm.train.fit(model, loss_fn, dataset, key=k_fit, steps=args.steps, optimizer=optimizer,
                       ema_decay=args.ema, run_dir=out, config=train_config,
                       checkpoint_every=args.checkpoint_every, resume=args.resume,
                       progress=not args.quiet, log_every=max(1, min(100, args.steps // 10)),
                       steps_per_call=args.steps_per_call or common.default_steps_per_call(True, 10))  # fmt: skip
    ema = res.ema_model if res.ema_model is not None else res.model
    train_time = time.perf_counter() - t0
    losses = [r["loss"] for r in res.history if "loss" in r and "event" not in r]

    t = time.perf_counter()
    clf = cm.train_classifier(xtr, ytr, key=k_clf, steps=args.classifier_steps)
    classifier = {"test_accuracy": cm.accuracy(clf, xte, yte), "steps": args.classifier_steps,
                  "train_images": len(xtr), "test_images": len(xte), "feature_dim": int(clf.head.in_features),
                  "params_digest": gm.train.params_digest(clf), "time_s": time.perf_counter() - t}  # fmt: skip
    n = args.num_samples
    rng = np.random.default_rng(args.seed)
    real = xtr[rng.choice(len(xtr), size=min(n, len(xtr)), replace=False)]
    noise = rng.uniform(-1, 1, size=(n, *image_shape)).astype(np.float32)
    fd = {
        "reference": f"{len(xte)} held-out images",
        "num_samples": n,
        "baseline_real_vs_real": cm.classifier_frechet_distance(clf, real, xte),
        "baseline_num_images": len(real),
        "uniform_noise": cm.classifier_frechet_distance(clf, noise, xte),
    }

    samplers, grids = {}, {"real_test": xte}
    for name, sampler in sampler_table().items():
        t = time.perf_counter()
        samples, nfe, labels = generate(ema, sampler, k_sample, n, image_shape, args)
        elapsed = time.perf_counter() - t
        finite = np.isfinite(samples).all(axis=tuple(range(1, samples.ndim)))
        clipped = np.clip(np.where(np.isfinite(samples), samples, 0.0), -1, 1)
        entry = {"nfe": nfe, "time_s": elapsed, "classifier_fd": cm.classifier_frechet_distance(clf, clipped, xte),
                 "nonfinite_samples": int((~finite).sum()), "grid": f"samples_{name}.png"}  # fmt: skip
        if labels is not None:
            entry["label_accuracy"] = cm.accuracy(clf, clipped, np.asarray(labels))
        samplers[name] = entry
        grids[f"samples_{name}"] = clipped

    t = time.perf_counter()
    bpd = bits_per_dim(ema, xte, k_bpd, data, args)
    bpd["time_s"] = time.perf_counter() - t

    save_pictures(out, grids, res.history)
    results = {
        "experiment": "images",
        "family": args.family,
        "dataset": args.dataset,
        "data": {"note": data["note"], "train_images": len(xtr), "test_images": len(xte),
                 "split_seed": args.split_seed, "levels": data["levels"]},  # fmt: skip
        "config": {k: v for k, v in vars(args).items() if k not in ("resume", "overwrite", "quiet")},
        "model": {"net": f"UNet(base={args.base}, channel_mult={DATASETS[args.dataset][2]}, 1 res block, attention)",
                  "parameters": int(sum(p.size for p in jax.tree.leaves(nnx.state(ema, nnx.Param)))),
                  "evaluated": "EMA" if res.ema_model is not None else "raw"},  # fmt: skip
        "steps": res.step,
        "final_loss": float(np.mean(losses[-3:])) if losses else None,
        "steps_per_sec": res.steps_per_sec,
        "train_time_s": train_time,
        "params_digest": gm.train.params_digest(ema),
        "bits_per_dim": bpd,
        "classifier": classifier,
        "classifier_frechet": fd,
        "samplers": samplers,
        "platform": jax.default_backend(),
        "wall_time": time.perf_counter() - t0,
        "code_version": common.code_version(),
    }
    common.write_json(out / "results.json", results)
    shown = ("family", "dataset", "steps", "bits_per_dim", "classifier_frechet", "samplers")
    print(json.dumps({k: common.to_json(results[k]) for k in shown}, indent=1))
    return results


if __name__ == "__main__":
    main()
