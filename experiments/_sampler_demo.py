"""The work of ``experiments/sampler_demo.py`` (imports JAX): every sampler on the exact denoiser of eight
Gaussians, error against NFE."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import genmodels as gm
from experiments import build, catalog
from experiments.configs.sampler_demo import Config

S = gm.schedules


def sampler_for(name: str, nfe: int):
    """The sampler ``name`` (``catalog.SAMPLERS``) spending about ``nfe`` denoiser calls, on Karras' grid;
    DDIM on the VP path's uniform-t grid, predictor-corrector and annealed Langevin on log-uniform levels."""
    if name in ("heun", "heun-churn"):
        return build.sampler(name, S.karras((nfe + 1) // 2))
    if name == "ddim":
        return build.sampler(name, S.uniform_t(gm.paths.VP(), nfe))
    if name == "pc":
        return build.sampler(name, S.log_uniform(max(nfe // 2, 1), 0.01, 50.0))
    if name == "langevin":
        levels = 10
        per_level = max((nfe - 1) // levels, 1)
        return build.sampler(name, S.log_uniform(levels, 0.01, 50.0), steps_per_level=per_level, step_size=1.9e-4)
    return build.sampler(name, S.karras(nfe))


def label(name: str) -> str:
    return catalog.SAMPLERS[name].label + (" (VP grid)" if name == "ddim" else "")


def evaluate(target, x, key):
    k1, k2, k3 = jax.random.split(key, 3)
    ref, ref2 = target.sample(k1, x.shape[0]), target.sample(k2, x.shape[0])
    comp = target.component_of(x)
    freq = jnp.bincount(comp, length=target.means.shape[0]) / x.shape[0]
    spread = jnp.sqrt(jnp.mean((x - target.means[comp]) ** 2) / jnp.mean(target.stds**2))
    return {
        "swd": float(gm.metrics.sliced_wasserstein(k3, x, ref)),
        "swd_baseline": float(gm.metrics.sliced_wasserstein(k3, ref2, ref)),
        "weight_error": float(jnp.max(jnp.abs(freq - target.weights))),
        "spread_ratio": float(spread),
        "finite": bool(jnp.all(jnp.isfinite(x))),
    }


def run(config: Config, out: Path) -> dict:
    """Every sampler at every budget (and the ODE at every tolerance); prints the table, writes
    ``out/results.json`` and ``out/samples.png``."""
    out.mkdir(parents=True, exist_ok=True)
    target = gm.targets.eight_gaussians()
    key = jax.random.key(config.seed)
    shape = (config.batch, 2)
    rows, pictures = [], {}
    start = time.perf_counter()
    for name in config.samplers:
        for nfe in config.nfe:
            sol = gm.solve(target, sampler_for(name, nfe), key, shape)
            rows.append(
                {"sampler": label(name), "nfe_budget": nfe, "nfe": int(sol.nfe), **evaluate(target, sol.samples, key)}
            )
            pictures[(label(name), nfe)] = np.asarray(sol.samples)
    for tol in config.ode_tols:
        sol = gm.solve(target, build.sampler("ode", rtol=tol, atol=tol), key, shape)
        rows.append({"sampler": f"ODE dopri5 tol={tol:g}", "nfe_budget": None, "nfe": int(sol.nfe),
                     **evaluate(target, sol.samples, key)})  # fmt: skip
        pictures[("ODE (adaptive)", tol)] = np.asarray(sol.samples)
    header = f"{'sampler':<24}{'NFE':>6}{'swd':>9}{'baseline':>10}{'w.err':>8}{'spread':>8}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['sampler']:<24}{r['nfe']:>6}{r['swd']:>9.4f}{r['swd_baseline']:>10.4f}"
              f"{r['weight_error']:>8.3f}{r['spread_ratio']:>8.2f}")  # fmt: skip
    results = {"target": "eight_gaussians(radius=2, std=0.2)", "batch": config.batch, "seed": config.seed,
               "wall_time_s": time.perf_counter() - start, "rows": rows}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _plot(pictures, target, out / "samples.png")
    print(f"\nwrote {out / 'results.json'} and {out / 'samples.png'}")
    return results


def _plot(pictures, target, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(k[0] for k in pictures))
    cols = max(sum(1 for k in pictures if k[0] == n) for n in names)
    fig, axes = plt.subplots(len(names), cols, figsize=(2.2 * cols, 2.2 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        keys = [k for k in pictures if k[0] == name]
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c >= len(keys):
                ax.axis("off")
                continue
            x = pictures[keys[c]]
            ax.scatter(x[:2000, 0], x[:2000, 1], s=1, alpha=0.5)
            ax.scatter(*np.asarray(target.means).T, s=8, c="red", marker="x")
            ax.set_xlim(-3.2, 3.2), ax.set_ylim(-3.2, 3.2)
            label = f"NFE {keys[c][1]}" if isinstance(keys[c][1], int) else f"tol {keys[c][1]:g}"
            ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
