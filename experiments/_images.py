"""The work of ``experiments/images.py`` (imports JAX): train EDM or flow matching on grey digits, then
score the EMA model (classifier-Fréchet distance per sampler, test bits/dim). See ``experiments/images.py``."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import genmodels as gm
from experiments import build, common
from experiments.configs.images import TRAIN_IMAGES, Config
from genmodels import classifier_metric as cm

DATASETS = {"digits": (17, (1, 2)), "mnist": (256, (1, 2, 2))}  # pixel levels, UNet channel_mult
SAMPLERS = (("heun_35", "heun", 18), ("dpmpp2m_10", "dpm++2m", 10), ("dpmpp2m_20", "dpm++2m", 20))  # label, name, steps


def sampler_table() -> dict:
    """The compared samplers, all on EDM's Karras grid (sigma in [0.002, 80], rho = 7)."""
    return {label: build.sampler(name, gm.schedules.karras(steps)) for label, name, steps in SAMPLERS}


def load_data(config: Config) -> dict:
    levels, n_train = DATASETS[config.dataset][0], TRAIN_IMAGES[config.dataset]
    if config.dataset == "digits":
        x, y = gm.data.load_digits("NHWC")
        note = (f"scikit-learn 8x8 digits (1,797 images): {n_train} train / {len(x) - n_train} held out, "
                f"fixed split seed {config.split_seed}")  # fmt: skip
    else:
        x, y = gm.data.load_mnist(config.data_path, "t10k", "NHWC")
        note = (f"MNIST: only the 10,000 official TEST digits are available here ({config.data_path}); they are "
                f"split {n_train} train / {len(x) - n_train} held out with fixed seed {config.split_seed}. Not the "
                "official train/test protocol.")  # fmt: skip
    (xtr, ytr), (xte, yte) = gm.data.split((x, y), n_train, seed=config.split_seed)
    return dict(train=(xtr, ytr), test=(xte, yte), levels=levels, bin_width=2.0 / (levels - 1), note=note)


def build_model(config: Config, image_shape):
    """(model, loss_fn) of the family around a fresh UNet."""
    net = gm.nets.UNet(image_shape[-1], base=config.base, channel_mult=DATASETS[config.dataset][1], num_res_blocks=1,
                       num_classes=10 if config.class_conditional else None, rngs=nnx.Rngs(config.seed))  # fmt: skip
    family = "cfm" if config.family == "fm" else config.family
    return build.family_model(family, net, sigma_data=0.5), build.family_loss(family)


def dequantized(loss_fn, bin_width: float):
    """``loss_fn`` on uniformly dequantised images x + w (u - 1/2), u ~ U[0, 1) drawn from the step's key."""

    def wrapped(model, batch, key):
        x0, labels = gm.losses.split_batch(batch)
        k_u, k_loss = jax.random.split(key)
        x0 = x0 + bin_width * (jax.random.uniform(k_u, x0.shape, x0.dtype) - 0.5)
        return loss_fn(model, x0 if labels is None else (x0, labels), k_loss)

    return wrapped


def train(config: Config, data: dict, key, run_dir, options: dict):
    """``gm.train.fit`` on the dequantised training images (with label dropout when class conditional)."""
    xtr, ytr = data["train"]
    model, loss_fn = build_model(config, tuple(xtr.shape[1:]))
    loss_fn = dequantized(loss_fn, data["bin_width"])
    if config.class_conditional:
        loss_fn = gm.losses.with_label_dropout(loss_fn, config.label_dropout, 10)
    dataset = gm.data.ArrayDataset((xtr, ytr) if config.class_conditional else xtr, config.batch)
    spc = config.steps_per_call or common.default_steps_per_call(True, 10)
    return gm.train.fit(
        model, loss_fn, dataset, key=key, steps=config.steps,
        optimizer=gm.train.adamw(gm.train.warmup_constant(config.lr, config.warmup)), ema=gm.train.EMA(config.ema),
        run_dir=run_dir,
        checkpoints=gm.train.Checkpoints(every=options["checkpoint_every"]),
        log=gm.train.Logging(every=max(1, min(100, config.steps // 10)), progress=not options["quiet"]),
        execution=gm.train.Execution(steps_per_call=spc),
    )  # fmt: skip


def generate(model, sampler, key, n, image_shape, config: Config):
    """n samples (numpy) and the NFE spent; guided by classifier-free guidance when class conditional."""
    labels = None
    if config.class_conditional:
        labels = jnp.arange(n, dtype=jnp.int32) % 10
        model = gm.guidance.ClassifierFree(model, labels, scale=config.guidance)
    sol = gm.solve(model, sampler, key, (n, *image_shape))
    return np.asarray(sol.samples), int(sol.nfe), labels


def bits_per_dim(model, images, key, data, config: Config) -> dict:
    """Mean and standard error of test bits/dim over dequantised held-out images (see images.py)."""
    w, levels = data["bin_width"], data["levels"]
    x = np.asarray(images[: config.bpd_images])
    k_deq, k_probe = jax.random.split(key)
    y = x + w * (np.asarray(jax.random.uniform(k_deq, x.shape, jnp.float32)) - 0.5)
    dims = int(np.prod(x.shape[1:]))
    b = min(config.bpd_batch, len(y))
    exact = config.bpd_trace == "exact"
    trace = gm.likelihood.ExactTrace() if exact else gm.likelihood.Hutchinson(config.bpd_probes)
    out = []
    for i, lo in enumerate(range(0, len(y), b)):
        yb = y[lo : lo + b]
        pad = b - len(yb)
        if pad:
            yb = np.concatenate([yb, yb[:pad]])
        lp = gm.log_prob(model, jnp.asarray(yb), jax.random.fold_in(k_probe, i), trace=trace, rtol=config.bpd_tol,
                         atol=config.bpd_tol)  # fmt: skip
        out.append(np.asarray(gm.bits_per_dim(lp, dims, levels, levels * w))[: b - pad])
    bpd = np.concatenate(out)
    return {
        "mean": float(bpd.mean()),
        "stderr": float(bpd.std(ddof=1) / math.sqrt(len(bpd))) if len(bpd) > 1 else None,
        "num_images": int(len(bpd)),
        "trace": config.bpd_trace + ("" if exact else f" ({config.bpd_probes} Rademacher probes)"),
        "tolerance": config.bpd_tol,
        "dequantization": f"uniform, {levels} levels, bin width {w:.6g} in [-1, 1] units; bpd = "
                          "(-log p(y) + D log(1/w)) / (D ln 2)",
        "model": "unconditional (null label)" if config.class_conditional else "unconditional",
    }  # fmt: skip


def spread(values) -> dict:
    """mean, sample standard deviation (None for one value) and the values, rounded to 4 significant digits."""
    v = [float(x) for x in values]
    std = float(np.std(v, ddof=1)) if len(v) > 1 else None
    return {"mean": float(np.mean(v)), "std": std, "values": [float(f"{x:.4g}") for x in v]}


def classifier_part(config: Config, data: dict, key):
    """The fixed feature network of the Fréchet distance (shipped with the package, never trained here) and
    the distance's floor (real vs real) and ceiling (uniform noise), each over ``fd_seeds`` draws."""
    (xtr, _), (xte, yte) = data["train"], data["test"]
    net = cm.feature_network(config.dataset)
    info = cm.feature_network_info(config.dataset)
    classifier = {"network": f"gm.classifier_metric.feature_network({config.dataset!r})",
                  "held_out_accuracy": cm.accuracy(net, xte, yte), "train_images": info["recipe"]["train_images"],
                  "trained_by": f"{info['script']} (seed {info['recipe']['seed']}, {info['recipe']['steps']} steps)",
                  "feature_dim": int(net.head.in_features), "params_digest": gm.train.params_digest(net)}  # fmt: skip
    n = config.num_samples
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    floor, ceiling = [], []
    for _ in range(config.fd_seeds):
        real = xtr[rng.choice(len(xtr), size=min(n, len(xtr)), replace=False)]
        noise = rng.uniform(-1, 1, size=(n, *xtr.shape[1:])).astype(np.float32)
        floor.append(cm.classifier_frechet_distance(net, real, xte))
        ceiling.append(cm.classifier_frechet_distance(net, noise, xte))
    fd = {"reference": f"{len(xte)} held-out images", "num_samples": n, "seeds": config.fd_seeds,
          "floor_real_vs_real": spread(floor), "floor_num_images": min(n, len(xtr)),
          "ceiling_uniform_noise": spread(ceiling)}  # fmt: skip
    return net, classifier, fd


def sample_part(model, clf, config: Config, data: dict, key) -> tuple[dict, dict]:
    """Per sampler and each of ``fd_seeds`` sampling seeds (the same initial noise for every sampler): NFE,
    time, classifier-FD against the held-out images (and label accuracy); the grids of the first seed."""
    xte = data["test"][0]
    samplers, grids = {}, {"real_test": xte}
    for name, sampler in sampler_table().items():
        fds, accs, elapsed, bad = [], [], 0.0, 0
        for seed in range(config.fd_seeds):
            t = time.perf_counter()
            samples, nfe, labels = generate(model, sampler, jax.random.fold_in(key, seed), config.num_samples,
                                            tuple(xte.shape[1:]), config)  # fmt: skip
            elapsed += time.perf_counter() - t
            bad += int((~np.isfinite(samples).all(axis=tuple(range(1, samples.ndim)))).sum())
            clipped = np.clip(np.where(np.isfinite(samples), samples, 0.0), -1, 1)
            fds.append(cm.classifier_frechet_distance(clf, clipped, xte))
            if labels is not None:
                accs.append(cm.accuracy(clf, clipped, np.asarray(labels)))
            if seed == 0:
                grids[f"samples_{name}"] = clipped
        entry = {"nfe": nfe, "time_s": elapsed / config.fd_seeds, "classifier_fd": spread(fds),
                 "nonfinite_samples": bad, "grid": f"samples_{name}.png"}  # fmt: skip
        if accs:
            entry["label_accuracy"] = spread(accs)
        samplers[name] = entry
    return samplers, grids


def save_pictures(out: Path, grids: dict, history: list) -> None:
    plt = common.pyplot()
    for name, pics in grids.items():
        grey = (np.clip(pics.reshape(pics.shape[:3])[:100], -1, 1) + 1) / 2
        plt.imsave(out / f"{name}.png", common.mosaic(grey, 10), cmap="gray", vmin=0, vmax=1)
    common.plot_losses({"training loss": history}, out / "loss.png")


def run(config: Config, run_dir: gm.train.RunDirectory, *, checkpoint_every: int | None = None,
        quiet: bool = False) -> dict:  # fmt: skip
    """Train, evaluate, draw in the opened ``run_dir``; writes ``results.json`` there and returns it
    (``quiet``: no progress display)."""
    t0, out = time.perf_counter(), run_dir.path
    data = load_data(config)
    (xtr, _), (xte, _) = data["train"], data["test"]
    k_fit, k_clf, k_sample, k_bpd = jax.random.split(jax.random.key(config.seed), 4)
    res = train(config, data, k_fit, run_dir, dict(checkpoint_every=checkpoint_every, quiet=quiet))
    ema = res.ema_model if res.ema_model is not None else res.model
    train_time = time.perf_counter() - t0
    losses = [r["loss"] for r in res.history if "loss" in r and "event" not in r]
    clf, classifier, fd = classifier_part(config, data, k_clf)
    samplers, grids = sample_part(ema, clf, config, data, k_sample)
    t = time.perf_counter()
    bpd = bits_per_dim(ema, xte, k_bpd, data, config)
    bpd["time_s"] = time.perf_counter() - t
    save_pictures(out, grids, res.history)
    results = {
        "experiment": "images", "family": config.family, "dataset": config.dataset,
        "data": {"note": data["note"], "train_images": len(xtr), "test_images": len(xte),
                 "split_seed": config.split_seed, "levels": data["levels"]},
        "config": dataclasses.asdict(config),
        "model": {"net": f"UNet(base={config.base}, channel_mult={DATASETS[config.dataset][1]}, 1 res block, attention)",
                  "parameters": int(sum(p.size for p in jax.tree.leaves(nnx.state(ema, nnx.Param)))),
                  "evaluated": "EMA" if res.ema_model is not None else "raw"},
        "steps": res.step, "final_loss": float(np.mean(losses[-3:])) if losses else None,
        "steps_per_sec": res.steps_per_sec, "train_time_s": train_time, "params_digest": gm.train.params_digest(ema),
        "bits_per_dim": bpd, "classifier": classifier, "classifier_frechet": fd, "samplers": samplers,
        "platform": jax.default_backend(), "wall_time": time.perf_counter() - t0, "code_version": common.code_version(),
    }  # fmt: skip
    common.write_json(out / "results.json", results)
    return results
