"""The work of ``experiments/binary_density.py`` (imports JAX): train an autoregressive model on binary data
with ``gm.train.fit`` and report exact test NLLs (nats per example). See ``experiments/binary_density.py``."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import genmodels as gm
from experiments import build, common
from experiments.configs.binary_density import IMAGES, REFERENCES, Config, recipe_name

A = gm.autoregressive


def load(config: Config) -> gm.data.BinarySplits:
    if config.dataset == "digits":
        return gm.data.binary_digits(split_seed=0)
    if config.dataset == "mnist":
        return gm.data.binary_mnist(config.data_source(), config.binarization, split_seed=0, binarize_seed=0)
    return gm.data.load_binary_npz(config.data_source())


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


def save_images(model, data, shape, out: Path, key, caption: str) -> dict:
    """``samples.png`` (64 ancestral samples) and ``completions.png`` (the bottom halves of 8 test images)."""
    plt = common.pyplot()
    k1, k2 = jax.random.split(key)
    flat = len(model.event_shape) == 1
    samples = np.asarray(gm.sample(model, gm.samplers.Ancestral(), k1, (64, *model.event_shape))).reshape(-1, *shape)
    plt.imsave(out / "samples.png", common.mosaic(samples, 8), cmap="gray", vmin=0, vmax=1)
    h, w = shape
    given = data.test[:8].reshape(8, h, w)
    reps = np.repeat(given, 4, axis=0).reshape(32, *((h * w,) if flat else (h, w)))
    comp = np.asarray(A.complete(model, k2, reps, (h // 2) * w)).reshape(8, 4, h, w)
    masked = given.copy()
    masked[:, h // 2 :] = 0.5
    rows = np.concatenate([given[:, None], masked[:, None], comp], axis=1)  # per digit: truth, given, 4 samples
    plt.imsave(out / "completions.png", common.mosaic(rows.reshape(-1, h, w), 6), cmap="gray", vmin=0, vmax=1)
    note = {"samples.png": f"64 ancestral samples, T=1 ({caption})",
            "completions.png": "rows: test digit, its top half (given), 4 completions of the bottom half"}  # fmt: skip
    common.write_json(out / "images.json", note)
    return note


def l2_loss(l2: float):
    """``nll_loss`` plus ``l2`` times the sum of squares of the weight matrices (arrays of rank >= 2)."""

    def loss_fn(model, batch, key):
        nll, metrics = A.nll_loss(model, batch, key)
        if not l2:
            return nll, metrics
        sq = sum(jnp.sum(jnp.square(w)) for w in jax.tree.leaves(nnx.state(model, nnx.Param)) if jnp.ndim(w) >= 2)
        return nll + l2 * sq, {"nll": nll}

    return loss_fn


def train(config: Config, model, train_data, valid_data, run_dir, checkpoint_every, valid_ensemble: int | None):
    """``gm.train.fit`` with validation NLL every ``validate_every`` steps and early stopping."""
    spc = config.steps_per_call or common.default_steps_per_call(config.model == "pixelcnn", 50)
    return gm.train.fit(
        model, l2_loss(config.l2), gm.data.ArrayDataset(train_data, config.batch_size), key=jax.random.key(config.seed),
        steps=config.steps, optimizer=gm.train.adamw(config.lr, weight_decay=config.weight_decay),
        ema=gm.train.EMA(config.ema) if config.ema else None,
        run_dir=run_dir, checkpoints=gm.train.Checkpoints(every=checkpoint_every),
        validation=gm.train.Validation(lambda m: mean_nll(m, valid_data, ensemble=valid_ensemble),
                                       every=config.validate_every, patience=config.patience),
        log=gm.train.Logging(every=max(config.validate_every, 100), progress=False),
        execution=gm.train.Execution(steps_per_call=spc),
    )  # fmt: skip


def run(config: Config, run_dir: gm.train.RunDirectory, *, data: gm.data.BinarySplits | None = None,
        checkpoint_every: int | None = None, quiet: bool = False) -> dict:  # fmt: skip
    """Train, evaluate (test / valid / train NLL), draw samples for images in the opened ``run_dir``; writes
    ``results.json`` there and returns it (``quiet``: without printing it). ``data``: the splits, already
    loaded by :func:`load` (loaded here when None)."""
    t0, out = time.perf_counter(), run_dir.path
    data = load(config) if data is None else data
    image = data.train.ndim == 3
    shape = data.train.shape[1:]
    event = shape if (image and config.model == "pixelcnn") else (int(np.prod(shape)),)
    train_data, valid, test = (a.reshape(len(a), *event) for a in (data.train, data.valid, data.test))
    model = build.ar_model(config, event, nnx.Rngs(config.seed))
    multi = config.model == "made" and config.num_masks > 1
    ensemble = (config.eval_masks or min(config.num_masks, 1000)) if multi else None
    valid_ensemble = (config.valid_masks or min(config.num_masks, 300)) if multi else None
    res = train(config, model, train_data, valid, run_dir, checkpoint_every, valid_ensemble)
    best = res.best_model if res.best_model is not None else (res.ema_model or res.model)
    t_train = time.perf_counter() - t0
    result = {
        "model": config.model, "dataset": config.dataset, "recipe": recipe_name(config), "data": data.description,
        "test_nll_nats": mean_nll(best, test, ensemble=ensemble),
        "valid_nll_nats": mean_nll(best, valid, ensemble=ensemble),
        "train_nll_nats": mean_nll(best, train_data, ensemble=ensemble),
        "nll_kind": f"MADE ensemble of {ensemble} masks (log-mean-exp of probabilities)" if ensemble else "exact",
    }  # fmt: skip
    if ensemble:
        result["test_nll_single_mask_nats"] = mean_nll(best, test)
        result["valid_nll_single_mask_nats"] = mean_nll(best, valid)
    result.update(
        reference_test_nll_nats=REFERENCES.get(config.dataset), steps=res.step,
        best_step=next((r["best_step"] for r in reversed(res.history) if "best_step" in r), None),
        stopped_early=res.stopped_early, params=int(sum(np.size(x) for x in jax.tree.leaves(nnx.state(best, nnx.Param)))),
        params_digest=gm.train.params_digest(best), train_wall_time_s=t_train, steps_per_sec=res.steps_per_sec,
        device=str(jax.devices()[0].device_kind), config=dataclasses.asdict(config),
    )  # fmt: skip
    if image and config.dataset in IMAGES:
        result["images"] = save_images(best, data, shape, out, jax.random.key(config.seed + 1), data.description)
    result["wall_time_s"] = time.perf_counter() - t0
    result["code_version"] = common.code_version()
    common.write_json(out / "results.json", result)
    if not quiet:
        print(json.dumps(common.to_json({k: v for k, v in result.items() if k != "config"}), indent=2))
    return result
