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


if __name__ == "__main__":
    build("sampler_api.ipynb", SAMPLER_API)
    print("wrote", HERE / "sampler_api.ipynb")
