"""Density estimation of binary data with the autoregressive models, trained by ``gm.train.fit``.

    python experiments/binary_density.py --model {fvsbn,nade,made,pixelcnn,transformer} \
        --dataset {digits,dna,mushrooms,mnist} --out DIR [--data-path P] [--steps N] \
        [--checkpoint-every N] [--resume] [--num-masks K] [--order-agnostic] ...

Data: ``dna`` / ``mushrooms`` are the standard splits (``.npz`` with train_data / valid_data / test_data;
``--data-path`` points at any such file); ``digits`` is scikit-learn's 8x8 digits thresholded at 0.5
(split 1297 / 250 / 250, seed 0); ``mnist`` binarises the 10,000 official MNIST *test* digits from IDX
files (``--data-path`` folder) and splits them 8,000 / 1,000 / 1,000 with a fixed seed: its numbers are not
comparable with the standard 50k-train binarised MNIST, as every output says.

Training: Adam(W) on the mean NLL (``gm.autoregressive.nll_loss``; MADE draws one of its ``--num-masks``
masks per step) plus an optional L2 penalty ``--l2`` on the weight matrices, EMA of the parameters, validation NLL every ``--validate-every`` steps with early stopping
after ``--patience`` validations without improvement; the best validated parameters are evaluated on the
test set. MADE with several masks reports the mask ensemble (log-mean-exp of the masks' probabilities)
as ``test_nll_nats`` and a single mask beside it.

Writes ``DIR/results.json`` (``test_nll_nats`` and the rest), ``DIR/run/`` (config, metrics.jsonl,
checkpoints; ``--resume`` continues it) and, for images, ``DIR/samples.png`` and ``DIR/completions.png``
(top half given, bottom half sampled).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import genmodels as gm
from genmodels.data import _binary

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments import common  # noqa: E402

A = gm.autoregressive
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# Test NLL (nats) from the NADE (Uria et al., JMLR 2016) and MADE (Germain et al., ICML 2015) tables.
REFERENCES = {
    "dna": {"fvsbn": 83.64, "nade": 84.81, "eonade": 82.31, "made": 83.63, "made_mask_sampling": 79.66},
    "mushrooms": {"fvsbn": 10.27, "nade": 9.81, "eonade": 9.68, "made": 9.68, "made_mask_sampling": 9.69},
    "mnist": {"fvsbn": 97.45, "nade": 88.33, "made": 86.64, "pixelcnn": 81.30,
              "note": "standard 50k/10k/10k binarised MNIST; not comparable with the 8k/1k/1k split used here"},
}  # fmt: skip


def load(args) -> _binary.BinarySplits:
    if args.dataset in _binary.UCI_BINARY:
        path = Path(args.data_path) if args.data_path else SHARED / "uci-binary" / f"{args.dataset}.npz"
        return _binary.load_binary_npz(path)
    if args.dataset == "mnist":
        path = Path(args.data_path) if args.data_path else SHARED / "mnist"
        return _binary.binary_mnist(path, args.binarization, split_seed=0, binarize_seed=0)
    return _binary.binary_digits(split_seed=0)


def build(args, event_shape, seed):
    rngs = nnx.Rngs(seed)
    n = int(np.prod(event_shape))
    if args.model == "fvsbn":
        return A.FVSBN(n, rngs=rngs)
    if args.model == "nade":
        return A.NADE(n, args.hidden[0], rngs=rngs)
    if args.model == "made":
        return A.MADE(n, tuple(args.hidden), order_agnostic=args.order_agnostic, num_masks=args.num_masks,
                      direct=args.direct, rngs=rngs)  # fmt: skip
    if args.model == "transformer":
        return A.Transformer(n, args.dim, args.heads, args.layers, rngs=rngs)
    if len(event_shape) != 2:
        raise SystemExit(f"pixelcnn needs image data (digits or mnist), not {args.dataset}.")
    return A.PixelCNN(tuple(event_shape), args.channels, args.layers, gated=args.gated, rngs=rngs)


@eqx.filter_jit
def _total_nll(model, x, ensemble: int | None):
    return -jnp.sum(model.ensemble_log_prob(x, ensemble) if ensemble else model.log_prob(x))


def mean_nll(model, data: np.ndarray, *, ensemble: int | None = None, chunk: int = 250) -> float:
    """Mean negative log-likelihood (nats) over ``data``, in chunks of ``chunk`` rows (one compilation per
    chunk shape); ``ensemble=K``: MADE's log-mean-exp over its first K masks."""
    s = 0.0
    for i in range(0, len(data), chunk):
        s += float(_total_nll(model, jnp.asarray(data[i : i + chunk]), ensemble))
    return s / len(data)


def mosaic(images: np.ndarray, cols: int) -> np.ndarray:
    """(N, H, W) -> one grey image of a grid with 1-pixel gaps."""
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), 0.5, np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = images[k]
    scale = max(1, 56 // h)  # small images are enlarged (nearest neighbour)
    return np.kron(out, np.ones((scale, scale), np.float32))


def save_images(model, data, shape, out: Path, key, caption: str) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k1, k2 = jax.random.split(key)
    flat = len(model.event_shape) == 1
    samples = np.asarray(gm.sample(model, gm.samplers.Ancestral(), k1, (64, *model.event_shape))).reshape(-1, *shape)
    plt.imsave(out / "samples.png", mosaic(samples, 8), cmap="gray", vmin=0, vmax=1)
    h, w = shape
    given = data.test[:8].reshape(8, h, w)
    reps = np.repeat(given, 4, axis=0).reshape(32, *((h * w,) if flat else (h, w)))
    comp = np.asarray(A.complete(model, k2, reps, (h // 2) * w)).reshape(8, 4, h, w)
    masked = given.copy()
    masked[:, h // 2 :] = 0.5
    rows = np.concatenate([given[:, None], masked[:, None], comp], axis=1)  # per digit: truth, given, 4 samples
    plt.imsave(out / "completions.png", mosaic(rows.reshape(-1, h, w), 6), cmap="gray", vmin=0, vmax=1)
    note = {"samples.png": f"64 ancestral samples, T=1 ({caption})",
            "completions.png": "rows: test digit, its top half (given), 4 completions of the bottom half"}  # fmt: skip
    (out / "images.json").write_text(json.dumps(note, indent=2))
    return note


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=["fvsbn", "nade", "made", "pixelcnn", "transformer"])
    p.add_argument("--dataset", default="digits", choices=["digits", "dna", "mushrooms", "mnist"])
    p.add_argument("--out", required=True)
    p.add_argument("--data-path", default=None)
    p.add_argument("--binarization", default="threshold", choices=["threshold", "stochastic"])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW decoupled weight decay")
    p.add_argument("--l2", type=float, default=0.0, help="L2 penalty on weight matrices, added to the mean NLL")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (0 disables)")
    p.add_argument("--validate-every", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[500], help="NADE: H; MADE: layer widths")
    p.add_argument("--num-masks", type=int, default=1,
                   help="MADE: size of the pool of masks drawn from in training (one per minibatch); a large pool "
                        "(e.g. 1000000) is a fresh mask for every minibatch, as in the MADE paper's UCI runs")
    p.add_argument("--eval-masks", type=int, default=None,
                   help="MADE: masks averaged (log-mean-exp of probabilities) for the test/train numbers "
                        "(default: min(num-masks, 1000))")
    p.add_argument("--valid-masks", type=int, default=None,
                   help="MADE: masks averaged for validation / early stopping (default: min(num-masks, 300))")
    p.add_argument("--order-agnostic", action="store_true", help="MADE: each mask has its own ordering")
    p.add_argument("--direct", action="store_true", help="MADE: direct input-output connections")
    p.add_argument("--dim", type=int, default=64, help="Transformer width")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2, help="Transformer blocks / PixelCNN hidden layers")
    p.add_argument("--channels", type=int, default=64, help="PixelCNN channels")
    p.add_argument("--gated", action="store_true", help="Gated PixelCNN")
    p.add_argument("--steps-per-call", type=int, default=None,
                   help="train steps per compiled call (default 50; 1 for PixelCNN on a CPU, where XLA runs "
                        "convolutions inside a loop body many times slower, jax-ml/jax#12868)")
    args = p.parse_args(argv)
    if args.steps_per_call is None:
        args.steps_per_call = common.default_steps_per_call(args.model == "pixelcnn", 50)
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = load(args)
    image = data.train.ndim == 3
    shape = data.train.shape[1:]
    event = shape if (image and args.model == "pixelcnn") else (int(np.prod(shape)),)
    train, valid, test = (a.reshape(len(a), *event) for a in (data.train, data.valid, data.test))
    model = build(args, event, args.seed)
    multi = args.model == "made" and args.num_masks > 1
    ensemble = (args.eval_masks or min(args.num_masks, 1000)) if multi else None
    valid_ensemble = (args.valid_masks or min(args.num_masks, 300)) if multi else None
    config = {k: v for k, v in vars(args).items() if k not in ("out", "resume")}
    config["data"] = data.description

    def loss_fn(m, batch, key):
        nll, metrics = A.nll_loss(m, batch, key)
        if not args.l2:
            return nll, metrics
        sq = sum(jnp.sum(jnp.square(w)) for w in jax.tree.leaves(nnx.state(m, nnx.Param)) if jnp.ndim(w) >= 2)
        return nll + args.l2 * sq, {"nll": nll}

    def validate(m):
        return mean_nll(m, valid, ensemble=valid_ensemble)

    res = gm.train.fit(
        model, loss_fn, gm.data.ArrayDataset(train, args.batch_size), key=jax.random.key(args.seed),
        steps=args.steps, optimizer=gm.train.adamw(args.lr, weight_decay=args.weight_decay),
        ema_decay=args.ema or None, run_dir=out / "run", config=config, checkpoint_every=args.checkpoint_every,
        resume=args.resume, log_every=max(args.validate_every, 100), progress=False, validate=validate,
        validate_every=args.validate_every, patience=args.patience, steps_per_call=args.steps_per_call,
    )  # fmt: skip
    best = res.best_model if res.best_model is not None else (res.ema_model or res.model)
    t_train = time.perf_counter() - t0
    result = {
        "model": args.model,
        "dataset": args.dataset,
        "data": data.description,
        "test_nll_nats": mean_nll(best, test, ensemble=ensemble),
        "valid_nll_nats": mean_nll(best, valid, ensemble=ensemble),
        "train_nll_nats": mean_nll(best, train, ensemble=ensemble),
        "nll_kind": f"MADE ensemble of {ensemble} masks (log-mean-exp of probabilities)" if ensemble else "exact",
    }
    if ensemble:
        result["test_nll_single_mask_nats"] = mean_nll(best, test)
        result["valid_nll_single_mask_nats"] = mean_nll(best, valid)
    result.update(
        reference_test_nll_nats=REFERENCES.get(args.dataset),
        steps=res.step,
        best_step=next((r["best_step"] for r in reversed(res.history) if "best_step" in r), None),
        stopped_early=res.stopped_early,
        params=int(sum(np.size(x) for x in jax.tree.leaves(nnx.state(best, nnx.Param)))),
        params_digest=gm.train.params_digest(best),
        train_wall_time_s=t_train,
        steps_per_sec=res.steps_per_sec,
        device=str(jax.devices()[0].device_kind),
        config=config,
    )
    if image:
        result["images"] = save_images(best, data, shape, out, jax.random.key(args.seed + 1), data.description)
    result["wall_time_s"] = time.perf_counter() - t0
    result["code_version"] = common.code_version()
    common.write_json(out / "results.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    main()
