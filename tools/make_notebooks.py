"""Regenerate the notebooks in notebooks/ from the cell sources below (keeps them reviewable as code).

    python tools/make_notebooks.py
"""

from __future__ import annotations

import pathlib

import nbformat

HERE = pathlib.Path(__file__).resolve().parent.parent / "notebooks"


def build(name: str, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, src in cells:
        src = src.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src))
    nbformat.write(nb, HERE / name)


SAMPLER_API = [
    ("md", """
# The genmodels sampler API

Everything continuous in genmodels is a Gaussian path $x_t = s(t)\\,(x_0 + \\sigma(t)\\,\\varepsilon)$ (Karras et al. 2022).
Samplers work in the scaled coordinates $\\hat x = x_0 + \\sigma\\varepsilon$ and only ask the model for a
denoiser $D(\\hat x, \\sigma) = \\mathbb E[x_0 \\mid \\hat x]$. This notebook walks through paths, schedules and
samplers on an analytic Gaussian mixture, whose exact denoiser makes every error the sampler's own.
"""),
    ("code", """
import jax, jax.numpy as jnp, numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import genmodels as gm
key = jax.random.key(0)
"""),
    ("md", "## Paths: $s(t)$ and $\\sigma(t)$ with the published defaults"),
    ("code", """
paths = {"VE": gm.paths.VE(), "VP": gm.paths.VP(), "SubVP": gm.paths.SubVP(), "EDM": gm.paths.EDM(),
         "Linear": gm.paths.Linear(), "Cosine": gm.paths.Cosine()}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, p in paths.items():
    t = jnp.linspace(p.t_min, p.t_max, 200)[:-1]
    u = (t - p.t_min) / (p.t_max - p.t_min)
    axes[0].plot(u, p.scale(t), label=name); axes[1].semilogy(u, p.sigma(t), label=name)
axes[0].set_title("s(t)"); axes[1].set_title("sigma(t)"); axes[0].set_xlabel("normalised t"); axes[1].legend()
# every path maps sigma back to t exactly
for name, p in paths.items():
    t = jnp.linspace(p.t_min, p.t_max, 50)[1:-1]
    print(f"{name:7s} max |t - inverse_sigma(sigma(t))| = {float(jnp.max(jnp.abs(p.inverse_sigma(p.sigma(t)) - t))):.1e}")
"""),
    ("md", "## Schedules: descending sigma arrays ending in 0 (k-diffusion convention)"),
    ("code", """
grids = {"karras(10)": gm.schedules.karras(10), "log_uniform(10)": gm.schedules.log_uniform(10),
         "uniform_t(VP, 10)": gm.schedules.uniform_t(gm.paths.VP(), 10),
         "uniform_t(Linear, 10)": gm.schedules.uniform_t(gm.paths.Linear(), 10)}
for name, g in grids.items():
    print(f"{name:22s}", np.array2string(np.asarray(g), precision=3, max_line_width=200))
"""),
    ("md", "## Samplers on eight Gaussians, driven by the exact denoiser"),
    ("code", """
target = gm.targets.eight_gaussians()
samplers = {
    "Euler (18)": gm.samplers.Euler(gm.schedules.karras(18)),
    "Heun (9 steps)": gm.samplers.Heun(gm.schedules.karras(9)),
    "DPM-Solver++(2M) (10)": gm.samplers.DPMSolverPP2M(gm.schedules.karras(10)),
    "Euler ancestral (50)": gm.samplers.EulerAncestral(gm.schedules.karras(50)),
}
fig, axes = plt.subplots(1, len(samplers), figsize=(4 * len(samplers), 4))
for ax, (name, sampler) in zip(axes, samplers.items()):
    sol = gm.solve(target, sampler, key, (2048, 2))
    freq = np.bincount(np.asarray(target.component_of(sol.samples)), minlength=8) / 2048
    ax.scatter(*np.asarray(sol.samples).T, s=1); ax.set_title(f"{name}: NFE {int(sol.nfe)}")
    print(f"{name:24s} NFE={int(sol.nfe):3d} component weights: {np.round(freq, 3)}")
"""),
    ("md", "## Trajectories: `save_trajectory=True` keeps every state"),
    ("code", """
sol = gm.solve(target, gm.samplers.Heun(gm.schedules.karras(18)), key, (64, 2), save_trajectory=True)
traj = np.asarray(sol.trajectory)            # (steps + 1, 64, 2), row 0 at sigma_max
scaled = traj / np.sqrt(1 + np.asarray(sol.levels)[:, None, None] ** 2)   # VP-scaled for plotting
plt.figure(figsize=(4, 4))
for i in range(64):
    plt.plot(scaled[:, i, 0], scaled[:, i, 1], lw=0.6)
plt.scatter(*traj[-1].T, s=6, c="k"); plt.title("probability-flow ODE paths (VP-scaled)")
print(traj.shape, sol.levels[:3])
"""),
    ("md", """
## Flow matching from pure noise at $t=1$

A velocity model on the Linear path $x_t = (1-t)x_0 + t\\varepsilon$ becomes a denoiser with
`gm.denoisers.from_velocity`; its `uniform_t` grid starts at $\\sigma=\\infty$ exactly.
"""),
    ("code", """
lin = gm.paths.Linear()
def exact_velocity(x_t, t):                 # u = (x_t - E[x0 | x_t]) / t on the Linear path
    s = lin.scale(t); safe = jnp.where(s > 0, s, 1.0)
    d = jnp.where(s > 0, target(x_t / safe, t / safe), target.mean)
    return (x_t - d) / t
model = gm.denoisers.from_velocity(exact_velocity)
grid = gm.schedules.uniform_t(lin, 20)
print("first sigmas:", grid[:3])
x = gm.sample(model, gm.samplers.Euler(grid), key, (2048, 2))
print("component weights:", np.round(np.bincount(np.asarray(target.component_of(x)), minlength=8) / 2048, 3))
"""),
    ("md", "## Likelihood through the probability-flow ODE"),
    ("code", """
x = target.sample(jax.random.key(1), 8)
lp = gm.log_prob(target, x, key)
exact = target.log_prob(x, 0.002)         # the data convolved with N(0, sigma_min^2)
print(np.round(np.asarray(lp), 3)); print(np.round(np.asarray(exact), 3))
"""),
]


TRAIN_TOY2D = [
    ("md", """
# Training a flow-matching and an EDM model on a 2-D toy, then comparing samplers

Two small MLPs (`gm.nets.MLP`, 3 x 128, SiLU) learn the *two moons* toy: one by conditional flow matching
on the Linear path (a velocity `gm.models.PathModel`), one by EDM's denoising loss under EDM
preconditioning (`gm.models.EDMModel`). Both are trained by `gm.train.fit` (AdamW with warmup and cosine
decay, EMA of the weights) and are then just *models*: `gm.sample` runs any sampler on either, so we
can compare Euler, Heun, DPM-Solver++(2M) and an adaptive Dopri5 ODE solve at equal numbers of network
evaluations (NFE). Quality is the sliced Wasserstein distance (swd) to fresh data, divided by the swd
between two fresh data sets of the same size (1.0 = as close as a second data set).
"""),
    ("code", """
import time
import jax, jax.numpy as jnp, numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from flax import nnx
import genmodels as gm

DATASET, STEPS, BATCH, N = "moons", 2000, 256, 4000
data = gm.data.toy(DATASET)                      # (key, n) -> (n, 2), normalised to unit variance
ref, ref2 = data(jax.random.key(100), N), data(jax.random.key(101), N)
proj = jax.random.key(102)                       # the same random projections for every swd
baseline = float(gm.metrics.sliced_wasserstein(proj, ref2, ref))
print(f"swd between two fresh data sets of {N} points: {baseline:.4f}")
"""),
    ("md", "## Training: one `gm.train.fit` call per model"),
    ("code", """
def train(model, loss, seed):
    opt = gm.train.adamw(2e-3, warmup=100, schedule="cosine", total_steps=STEPS, final_fraction=0.05)
    res = gm.train.fit(model, loss, gm.data.toy_dataset(DATASET, BATCH), key=jax.random.key(seed),
                       steps=STEPS, optimizer=opt, ema_decay=0.995, log_every=100, progress=False)
    print(f"{type(model).__name__:10s} {STEPS} steps in {res.wall_time:5.1f} s (compilation included), "
          f"final loss {res.history[-1]['loss']:.3f}")
    return res

t0 = time.perf_counter()
flow = train(gm.models.PathModel(gm.nets.MLP(2, 128, 3, rngs=nnx.Rngs(0)), gm.paths.Linear(), "velocity"),
             gm.losses.cfm_loss, seed=1)
edm = train(gm.models.EDMModel(gm.nets.MLP(2, 128, 3, rngs=nnx.Rngs(0)), sigma_data=0.5),
            gm.losses.edm_loss, seed=2)
print(f"both models trained in {time.perf_counter() - t0:.1f} s")

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for ax, (name, res) in zip(axes, (("flow matching", flow), ("EDM", edm))):
    rows = [r for r in res.history if "loss" in r]
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows]); ax.set_title(f"{name}: training loss")
    ax.set_xlabel("step")
"""),
    ("md", """
## Samplers at equal NFE

The flow model's natural grid is uniform in t on the Linear path, starting at $\\sigma=\\infty$ (t = 1, pure
noise); the EDM model's is Karras et al.'s grid from $\\sigma=80$ to $0.002$. The samplers are the same
objects for both.
"""),
    ("code", """
models = {"flow matching": flow.ema_model, "EDM": edm.ema_model}
grids = {"flow matching": lambda n: gm.schedules.uniform_t(gm.paths.Linear(), n),
         "EDM": lambda n: gm.schedules.karras(n, 0.002, 80.0)}
samplers = {"Euler": gm.samplers.Euler, "Heun": gm.samplers.Heun, "DPM-Solver++(2M)": gm.samplers.DPMSolverPP2M}
key = jax.random.key(7)
results, pictures = [], {}
for mname, model in models.items():
    for sname, make in samplers.items():
        for steps in (4, 8, 16, 32):
            sol = gm.solve(model, make(grids[mname](steps)), key, (N, 2))
            ratio = float(gm.metrics.sliced_wasserstein(proj, sol.samples, ref)) / baseline
            results.append((mname, sname, int(sol.nfe), ratio))
            pictures[mname, sname, steps] = np.asarray(sol.samples)
    sol = gm.solve(model, gm.samplers.ODE(sigma_max=80.0, sigma_min=0.002, rtol=1e-3, atol=1e-3), key, (N, 2))
    results.append((mname, "ODE (Dopri5, adaptive)", int(sol.nfe),
                    float(gm.metrics.sliced_wasserstein(proj, sol.samples, ref)) / baseline))
print(f"{'model':14s} {'sampler':24s} {'NFE':>4s} {'swd / baseline':>15s}")
for mname, sname, nfe, ratio in results:
    print(f"{mname:14s} {sname:24s} {nfe:4d} {ratio:15.2f}")
"""),
    ("code", """
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, mname in zip(axes, models):
    for sname in list(samplers) + ["ODE (Dopri5, adaptive)"]:
        pts = [(nfe, r) for m, s, nfe, r in results if m == mname and s == sname]
        ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "*", label=sname, ms=8 if len(pts) == 1 else 4)
    ax.axhline(1.0, color="k", lw=0.8, ls=":"); ax.axhline(2.0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("NFE"); ax.set_title(mname)
axes[0].set_ylabel("swd / baseline"); axes[1].legend(fontsize=8)
"""),
    ("md", "## What few steps look like: 8 steps of each sampler"),
    ("code", """
fig, axes = plt.subplots(2, 4, figsize=(12, 6))
for row, mname in zip(axes, models):
    row[0].scatter(*np.asarray(ref).T, s=0.5, alpha=0.4); row[0].set_title("data")
    for ax, sname in zip(row[1:], samplers):
        x = pictures[mname, sname, 8]
        ax.scatter(*x.T, s=0.5, alpha=0.4); ax.set_title(f"{mname}: {sname}", fontsize=9)
    for ax in row:
        ax.set_xlim(-2.5, 2.5); ax.set_ylim(-2.5, 2.5); ax.set_xticks([]); ax.set_yticks([])
"""),
    ("md", """
## Likelihood

`gm.log_prob` integrates the probability-flow ODE with the exact divergence (two dimensions), so both
models get a test negative log-likelihood in nats, the density their ODE samplers sample from.
"""),
    ("code", """
x_test = data(jax.random.key(200), 500)
for mname, model in models.items():
    nll = -float(jnp.mean(gm.log_prob(model, x_test, jax.random.key(0))))
    print(f"{mname:14s} test NLL {nll:.3f} nats")
"""),
]


if __name__ == "__main__":
    build("sampler_api.ipynb", SAMPLER_API)
    print("wrote", HERE / "sampler_api.ipynb")
    build("train_toy2d.ipynb", TRAIN_TOY2D)
    print("wrote", HERE / "train_toy2d.ipynb")
