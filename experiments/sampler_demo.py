"""Every sampler on an analytic 2-D mixture: error against NFE, and a picture of the samples.

The model is the exact denoiser of eight Gaussians on a circle (gm.targets.eight_gaussians), so every
difference from the data is the sampler's own error. For each sampler and NFE budget the script reports
the sliced Wasserstein distance to fresh exact samples (``swd``, with ``swd_baseline``, the distance
between two exact sample sets of the same size), the largest error in the component weights, and the
ratio of the within-component spread to the true std.

    python experiments/sampler_demo.py --out runs/sampler_demo

writes ``results.json`` and ``samples.png`` there and prints the table.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import genmodels as gm

S = gm.schedules


def sampler_for(name: str, nfe: int):
    """A sampler of family ``name`` spending about ``nfe`` denoiser calls (None if the budget is too small)."""
    if name == "Euler":
        return gm.samplers.Euler(S.karras(nfe))
    if name == "Heun":
        return gm.samplers.Heun(S.karras((nfe + 1) // 2))
    if name == "Heun (churn)":
        return gm.samplers.Heun(S.karras((nfe + 1) // 2), s_churn=10.0, s_tmin=0.05, s_tmax=50.0)
    if name == "DPM-Solver++(2M)":
        return gm.samplers.DPMSolverPP2M(S.karras(nfe))
    if name == "DPM-Solver++(3M) SDE":
        return gm.samplers.DPMSolverPP3MSDE(S.karras(nfe))
    if name == "DDIM (VP grid)":
        return gm.samplers.DDIM(S.uniform_t(gm.paths.VP(), nfe))
    if name == "Euler ancestral":
        return gm.samplers.EulerAncestral(S.karras(nfe))
    if name == "Euler-Maruyama":
        return gm.samplers.EulerMaruyama(S.karras(nfe))
    if name == "Predictor-corrector":
        return gm.samplers.PredictorCorrector(S.log_uniform(max(nfe // 2, 1), 0.01, 50.0))
    if name == "Annealed Langevin":
        levels = 10
        per_level = max((nfe - 1) // levels, 1)
        return gm.samplers.AnnealedLangevin(S.log_uniform(levels, 0.01, 50.0), steps_per_level=per_level, step_size=1.9e-4)
    raise ValueError(name)


FIXED = [
    "Euler", "Heun", "Heun (churn)", "DPM-Solver++(2M)", "DPM-Solver++(3M) SDE", "DDIM (VP grid)",
    "Euler ancestral", "Euler-Maruyama", "Predictor-corrector", "Annealed Langevin",
]


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/sampler_demo"))
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.batch < 2 or any(n < 2 for n in args.nfe):
        parser.error("--batch and every --nfe must be >= 2")
    args.out.mkdir(parents=True, exist_ok=True)

    target = gm.targets.eight_gaussians()
    key = jax.random.key(args.seed)
    rows, pictures = [], {}
    start = time.perf_counter()
    for name in FIXED:
        for nfe in args.nfe:
            sol = gm.solve(target, sampler_for(name, nfe), key, (args.batch, 2))
            rows.append({"sampler": name, "nfe_budget": nfe, "nfe": int(sol.nfe), **evaluate(target, sol.samples, key)})
            pictures[(name, nfe)] = np.asarray(sol.samples)
    for tol in (1e-2, 1e-3, 1e-5):
        sol = gm.solve(target, gm.samplers.ODE(rtol=tol, atol=tol), key, (args.batch, 2))
        rows.append({"sampler": f"ODE dopri5 tol={tol:g}", "nfe_budget": None, "nfe": int(sol.nfe),
                     **evaluate(target, sol.samples, key)})
        pictures[("ODE (adaptive)", tol)] = np.asarray(sol.samples)

    header = f"{'sampler':<24}{'NFE':>6}{'swd':>9}{'baseline':>10}{'w.err':>8}{'spread':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['sampler']:<24}{r['nfe']:>6}{r['swd']:>9.4f}{r['swd_baseline']:>10.4f}"
              f"{r['weight_error']:>8.3f}{r['spread_ratio']:>8.2f}")
    results = {"target": "eight_gaussians(radius=2, std=0.2)", "batch": args.batch, "seed": args.seed,
               "wall_time_s": time.perf_counter() - start, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    _plot(pictures, target, args.out / "samples.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'samples.png'}")


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


if __name__ == "__main__":
    main()
