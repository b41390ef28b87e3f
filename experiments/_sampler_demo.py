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


def _mean_std(rows: list[dict], key: str) -> tuple[float, float | None]:
    v = np.asarray([r[key] for r in rows], np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def _row(label_: str, budget, sols_and_keys: list, target) -> dict:
    """One table row: the metrics of each seed, then their mean and std (``<metric>_std``)."""
    per_seed = [evaluate(target, sol.samples, k) for sol, k in sols_and_keys]
    row = {"sampler": label_, "nfe_budget": budget, "nfe": int(sols_and_keys[0][0].nfe), "seeds": len(per_seed)}
    for key in ("swd", "swd_baseline", "weight_error", "spread_ratio"):
        row[key], row[key + "_std"] = _mean_std(per_seed, key)
    row["finite"] = all(r["finite"] for r in per_seed)
    row["per_seed"] = [{k: round(v, 5) if isinstance(v, float) else v for k, v in r.items()} for r in per_seed]
    return row


def _fmt(mean: float, std: float | None, width: int, digits: int = 4) -> str:
    text = f"{mean:.{digits}f}" + ("" if std is None else f" ±{std:.{digits}f}")
    return f"{text:>{width}}"


def table(rows: list[dict], seeds: int) -> str:
    """The rows as an aligned text table (< 100 columns): budget, actual NFE, mean ± std over the seeds."""
    header = f"{'sampler':<24}{'budget':>7}{'NFE':>5}{'swd':>17}{'baseline':>17}{'w.err':>14}{'spread':>13}"
    lines = [f"mean ± std over {seeds} seeds; budget = NFE asked for, NFE = denoiser calls made", header,
             "-" * len(header)]  # fmt: skip
    for r in rows:
        budget = "-" if r["nfe_budget"] is None else r["nfe_budget"]
        lines.append(f"{r['sampler']:<24}{budget:>7}{r['nfe']:>5}{_fmt(r['swd'], r['swd_std'], 17)}"
                     f"{_fmt(r['swd_baseline'], r['swd_baseline_std'], 17)}"
                     f"{_fmt(r['weight_error'], r['weight_error_std'], 14, 3)}"
                     f"{_fmt(r['spread_ratio'], r['spread_ratio_std'], 13, 2)}")  # fmt: skip
    return "\n".join(lines)


def run(config: Config, out: Path, *, quiet: bool = False) -> dict:
    """Every sampler at every budget (and the ODE at every tolerance), each with ``config.seeds`` seeds;
    prints the table (and, unless ``quiet``, where it went), writes ``out/results.json`` and ``out/samples.png``."""
    out.mkdir(parents=True, exist_ok=True)
    target = gm.targets.eight_gaussians()
    keys = [jax.random.fold_in(jax.random.key(config.seed), s) for s in range(config.seeds)]
    shape = (config.batch, 2)
    rows, pictures = [], {}
    start = time.perf_counter()
    runs = [(label(n), nfe, sampler_for(n, nfe)) for n in config.samplers for nfe in config.nfe]
    runs += [("ODE dopri5", tol, build.sampler("ode", rtol=tol, atol=tol)) for tol in config.ode_tols]
    for name, budget, sampler in runs:
        sols = [(gm.solve(target, sampler, k, shape), k) for k in keys]
        adaptive = isinstance(budget, float)
        rows.append(_row(f"{name} tol={budget:g}" if adaptive else name, None if adaptive else budget, sols, target))
        pictures[(name, budget, rows[-1]["nfe"])] = np.asarray(sols[0][0].samples)
    text = table(rows, config.seeds)
    results = {"target": "eight_gaussians(radius=2, std=0.2)", "batch": config.batch, "seed": config.seed,
               "seeds": config.seeds, "wall_time_s": round(time.perf_counter() - start, 1), "rows": rows}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _plot(pictures, target, out / "samples.png")
    print(text + ("" if quiet else f"\n\nwrote {out / 'results.json'} and {out / 'samples.png'}"))
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
            ax.scatter(x[:2000, 0], x[:2000, 1], s=1, alpha=0.5, label="samples (seed 0)")
            ax.scatter(*np.asarray(target.means).T, s=8, c="red", marker="x", label="component means")
            ax.set_xlim(-3.2, 3.2), ax.set_ylim(-3.2, 3.2)
            _, budget, nfe = keys[c]
            what = f"tol {budget:g}" if isinstance(budget, float) else f"budget {budget}"
            ax.set_title(f"{name}\n{what}, NFE {nfe}", fontsize=7)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
            if r == 0 and c == 0:
                ax.legend(fontsize=6, loc="lower left", markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
