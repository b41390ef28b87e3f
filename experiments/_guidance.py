"""The work of ``experiments/guidance.py`` (imports JAX): guidance methods against the exact class
distributions of an analytic class-conditional mixture."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import genmodels as gm
from experiments import common
from experiments.configs.guidance import Config


def models(config: Config):
    """(truth, good, bad): the class-conditional tree and its controlled imperfect versions, all exact."""
    key = jax.random.key(config.tree_seed)
    truth = gm.targets.branching_tree(key, depth=config.depth)
    good = truth.widen(config.good_widen)
    bad = gm.targets.branching_tree(key, depth=config.depth, per_branch=config.bad_per_branch).widen(config.bad_widen)
    return truth, good, bad


def variants(config: Config, good, bad, labels) -> dict:
    """Label -> function of w giving the guided model: one per method, one per interval of cfg-interval."""
    out = {}
    for method in config.methods:
        if method == "cfg":
            out["CFG"] = lambda w: gm.guidance.ClassifierFree(good, labels, w)
        elif method == "autoguidance":
            out["autoguidance"] = lambda w: gm.guidance.Autoguidance(good, bad, labels, w)
        else:
            for lo, hi in config.interval_pairs:
                interval = gm.guidance.GuidanceInterval(lo, hi)
                out[f"CFG + [{lo:g}, {hi:g}]"] = lambda w, i=interval: gm.guidance.ClassifierFree(
                    good, labels, w, interval=i
                )
    return out


def _swd_per_class(key, x, ref, labels_np, num_classes):
    """Sliced W2 of each class's samples to that class's reference samples, averaged over classes."""
    out = [gm.metrics.sliced_wasserstein(key, x[labels_np == c], ref[labels_np == c]) for c in range(num_classes)]
    return float(np.mean([float(v) for v in out]))


MMD_BANDWIDTHS = (0.02, 0.05, 0.2)  # component stds are 0.004-0.03: small kernels see the branches' width


def _mmd_per_class(x, ref, labels_np, num_classes):
    """Squared MMD (gm.metrics.mmd, kernels of MMD_BANDWIDTHS) of each class to its reference, averaged."""
    out = [gm.metrics.mmd(x[labels_np == c], ref[labels_np == c], MMD_BANDWIDTHS) for c in range(num_classes)]
    return float(np.mean([float(v) for v in out]))


def _score(truth, x, labels, labels_np, ref, key, num_classes) -> dict:
    return {
        "precision": float(jnp.mean(truth.log_prob(x, 0.0, labels))),
        "swd": _swd_per_class(key, x, ref, labels_np, num_classes),
        "mmd": _mmd_per_class(x, ref, labels_np, num_classes),
    }


def run(config: Config, out: Path, *, quiet: bool = False) -> dict:
    """Every method at every weight (same noise everywhere); prints the table (unless ``quiet``), writes
    ``out/results.json``, ``out/table.md``, ``out/samples.png`` and ``out/tradeoff.png``."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    truth, good, bad = models(config)
    num_classes = truth.num_classes
    labels = jnp.repeat(jnp.arange(num_classes), config.per_class)
    labels_np = np.asarray(labels)
    shape = (labels.shape[0], 2)
    key = jax.random.key(config.seed)
    k_noise, k_ref, k_swd, k_base = jax.random.split(key, 4)
    ref = truth.sample(k_ref, labels.shape[0], labels)
    pairs = [truth.sample(k, labels.shape[0], labels) for k in jax.random.split(k_base, config.baseline_pairs)]
    base = [_swd_per_class(k_swd, p, ref, labels_np, num_classes) for p in pairs]
    base_mmd = [_mmd_per_class(p, ref, labels_np, num_classes) for p in pairs]
    exact = {"precision": float(jnp.mean(truth.log_prob(pairs[0], 0.0, labels))),
             "swd": float(np.mean(base)), "swd_std": float(np.std(base)),
             "mmd": float(np.mean(base_mmd)), "mmd_std": float(np.std(base_mmd))}  # fmt: skip
    sampler = gm.samplers.Heun(gm.schedules.karras(config.steps))
    fine = gm.samplers.Heun(gm.schedules.karras(2 * config.steps))
    cond_good = gm.models.with_labels(good, labels)
    x_fine = gm.sample(cond_good, fine, k_noise, shape)
    x_coarse = gm.sample(cond_good, sampler, k_noise, shape)
    sampler_error = float(jnp.mean(jnp.linalg.norm(x_fine - x_coarse, axis=-1)))
    rows, pictures = [], {"exact": np.asarray(pairs[0])}
    unguided = {"good model": cond_good, "bad model": gm.models.with_labels(bad, labels)}
    for name, model in unguided.items():
        sol = gm.solve(model, sampler, k_noise, shape)
        rows.append({"method": name, "w": None, "nfe": int(sol.nfe),
                     **_score(truth, sol.samples, labels, labels_np, ref, k_swd, num_classes)})  # fmt: skip
    for name, guided in variants(config, good, bad, labels).items():
        for w in config.scales:
            sol = gm.solve(guided(w), sampler, k_noise, shape)
            rows.append({"method": name, "w": w, "nfe": int(sol.nfe),
                         **_score(truth, sol.samples, labels, labels_np, ref, k_swd, num_classes)})  # fmt: skip
            pictures[(name, w)] = np.asarray(sol.samples)
    for r in rows:
        r["swd_ratio"] = r["swd"] / exact["swd"]
        r["mmd_ratio"] = r["mmd"] / exact["mmd"]
    results = {"config": {f: getattr(config, f) for f in config.__dataclass_fields__}, "exact": exact,
               "sampler_error": sampler_error, "wall_time_s": round(time.perf_counter() - start, 1),
               "rows": rows}  # fmt: skip
    text = table(results)
    common.write_json(out / "results.json", results)
    (out / "table.md").write_text(text + "\n")
    _plot_samples(pictures, labels_np, config, out / "samples.png")
    _plot_tradeoff(rows, exact, out / "tradeoff.png")
    if not quiet:
        print(text + f"\n\nwrote {out}/results.json, table.md, samples.png, tradeoff.png")
    return results


def table(results: dict) -> str:
    """The markdown table of ``results`` (one row per method and weight, the exact samples first)."""
    ex = results["exact"]
    rows = [["exact samples", "-", "-", f"{ex['precision']:.3f}", f"{ex['swd']:.4f} ± {ex['swd_std']:.4f}", "1.00",
             f"{ex['mmd']:.2e} ± {ex['mmd_std']:.1e}", "1.0"]]  # fmt: skip
    for r in results["rows"]:
        w = "-" if r["w"] is None else f"{r['w']:g}"
        rows.append([r["method"], w, r["nfe"], f"{r['precision']:.3f}", f"{r['swd']:.4f}", f"{r['swd_ratio']:.2f}",
                     f"{r['mmd']:.2e}", f"{r['mmd_ratio']:.1f}"])  # fmt: skip
    header = ["method", "w", "NFE", "precision: mean log p(x | y)", "coverage: sliced W2", "W2 / baseline",
              "MMD²", "MMD² / baseline"]  # fmt: skip
    return common.markdown_table(header, rows)


def _plot_samples(pictures, labels_np, config, path):
    plt = common.pyplot()
    methods = list(dict.fromkeys(k[0] for k in pictures if k != "exact"))
    scales = list(config.scales)
    fig, axes = plt.subplots(len(methods), len(scales) + 1, figsize=(2.2 * (len(scales) + 1), 2.2 * len(methods)),
                             squeeze=False)  # fmt: skip
    colours = np.array(["tab:blue", "tab:orange", "tab:green", "tab:red"])[labels_np % 4]
    pick = np.random.default_rng(0).permutation(labels_np.shape[0])[:3000]
    for r, method in enumerate(methods):
        panels = [("exact", pictures["exact"])] + [(f"{method}, w = {w:g}", pictures[(method, w)]) for w in scales]
        for c, (title, x) in enumerate(panels):
            ax = axes[r, c]
            ax.scatter(x[pick, 0], x[pick, 1], s=0.6, c=colours[pick], alpha=0.6, linewidths=0)
            ax.set_xlim(-1.6, 1.6), ax.set_ylim(-1.6, 1.6), ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_tradeoff(rows, exact, path):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method in dict.fromkeys(r["method"] for r in rows if r["w"] is not None):
        pts = [r for r in rows if r["method"] == method]
        ax.plot([r["swd_ratio"] for r in pts], [r["precision"] for r in pts], "o-", label=method, ms=3)
        for r in pts:
            ax.annotate(f"{r['w']:g}", (r["swd_ratio"], r["precision"]), fontsize=6, xytext=(2, 2),
                        textcoords="offset points")  # fmt: skip
    ax.axhline(exact["precision"], color="grey", lw=0.8, ls="--", label="exact samples")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("coverage: sliced W2 / finite-sample baseline (lower is better)")
    ax.set_ylabel("precision: mean log p(x | y)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
