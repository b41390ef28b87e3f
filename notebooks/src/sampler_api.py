# %% [markdown]
# # The genmodels sampler API
#
# Everything continuous in genmodels is a Gaussian path $x_t = s(t)\,(x_0 + \sigma(t)\,\varepsilon)$ (Karras et al. 2022).
# Samplers work in the scaled coordinates $\hat x = x_0 + \sigma\varepsilon$ and only ask the model for a
# denoiser $D(\hat x, \sigma) = \mathbb E[x_0 \mid \hat x]$. This notebook walks through paths, schedules and
# samplers on an analytic Gaussian mixture, whose exact denoiser makes every error the sampler's own.

# %%
%matplotlib inline
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
plt.rcParams.update({"figure.dpi": 72, "figure.facecolor": "white"})   # small, opaque figures
import genmodels as gm
key = jax.random.key(0)
print("genmodels", gm.__version__, "| jax", jax.__version__, "| devices:", jax.devices())

# %% [markdown]
# ## Paths: $s(t)$ and $\sigma(t)$ with the published defaults

# %%
paths = {"VE": gm.paths.VE(), "VP": gm.paths.VP(), "SubVP": gm.paths.SubVP(), "EDM": gm.paths.EDM(),
         "Linear": gm.paths.Linear(), "Cosine": gm.paths.Cosine()}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, p in paths.items():
    t = jnp.linspace(p.t_min, p.t_max, 200)[:-1]
    u = (t - p.t_min) / (p.t_max - p.t_min)
    axes[0].plot(u, p.scale(t), label=name); axes[1].semilogy(u, p.sigma(t), label=name)
axes[0].set_title("s(t)"); axes[1].set_title("sigma(t)")
for ax in axes:
    ax.set_xlabel("normalised t")
axes[1].legend(fontsize=8)
plt.show()
# every path maps sigma back to t exactly
for name, p in paths.items():
    t = jnp.linspace(p.t_min, p.t_max, 50)[1:-1]
    print(f"{name:7s} max |t - inverse_sigma(sigma(t))| = {float(jnp.max(jnp.abs(p.inverse_sigma(p.sigma(t)) - t))):.1e}")

# %% [markdown]
# ## Schedules: descending sigma arrays ending in 0 (k-diffusion convention)

# %%
grids = {"karras(10)": gm.schedules.karras(10), "log_uniform(10)": gm.schedules.log_uniform(10),
         "uniform_t(VP, 10)": gm.schedules.uniform_t(gm.paths.VP(), 10),
         "uniform_t(Linear, 10)": gm.schedules.uniform_t(gm.paths.Linear(), 10)}
for name, g in grids.items():
    print(f"{name:22s}", np.array2string(np.asarray(g), precision=3, max_line_width=200))

# %% [markdown]
# ## Samplers on eight Gaussians, driven by the exact denoiser

# %%
target = gm.targets.eight_gaussians()
samplers = {
    "Euler (18)": gm.samplers.Euler(gm.schedules.karras(18)),
    "Heun (9 steps)": gm.samplers.Heun(gm.schedules.karras(9)),
    "DPM-Solver++(2M) (10)": gm.samplers.DPMSolverPP2M(gm.schedules.karras(10)),
    "Euler ancestral (50)": gm.samplers.EulerAncestral(gm.schedules.karras(50)),
}
fig, axes = plt.subplots(1, len(samplers), figsize=(3 * len(samplers), 3), sharex=True, sharey=True)
for ax, (name, sampler) in zip(axes, samplers.items()):
    sol = gm.solve(target, sampler, key, (2048, 2))
    freq = np.bincount(np.asarray(target.component_of(sol.samples)), minlength=8) / 2048
    ax.scatter(*np.asarray(sol.samples).T, s=1); ax.set_title(f"{name}: NFE {int(sol.nfe)}", fontsize=9)
    print(f"{name:24s} NFE={int(sol.nfe):3d} component weights: {np.round(freq, 3)}")
plt.show()

# %% [markdown]
# ## Trajectories: `save_trajectory=True` keeps every state

# %%
sol = gm.solve(target, gm.samplers.Heun(gm.schedules.karras(18)), key, (64, 2), save_trajectory=True)
traj = np.asarray(sol.trajectory)            # (steps + 1, 64, 2), row 0 at sigma_max
scaled = traj / np.sqrt(1 + np.asarray(sol.levels)[:, None, None] ** 2)   # VP-scaled for plotting
plt.figure(figsize=(4, 4))
for i in range(64):
    plt.plot(scaled[:, i, 0], scaled[:, i, 1], lw=0.6, color="0.6")
plt.scatter(*scaled[0].T, s=8, c="tab:blue", label=f"start (sigma = {float(sol.levels[0]):g})")
plt.scatter(*traj[-1].T, s=8, c="k", label="end (sigma = 0)")
plt.title("Heun, 18 steps: probability-flow ODE paths\n(VP-scaled: x / sqrt(1 + sigma^2))", fontsize=9)
plt.legend(fontsize=8, loc="lower right")
plt.show()
print("trajectory", traj.shape, "| first levels", np.round(np.asarray(sol.levels[:3]), 2))

# %% [markdown]
# ## Flow matching from pure noise at $t=1$
#
# A velocity model on the Linear path $x_t = (1-t)x_0 + t\varepsilon$ becomes a denoiser with
# `gm.denoisers.from_velocity`; its `uniform_t` grid starts at $\sigma=\infty$ exactly.

# %%
lin = gm.paths.Linear()
def exact_velocity(x_t, t):                 # u = (x_t - E[x0 | x_t]) / t on the Linear path
    s = lin.scale(t); safe = jnp.where(s > 0, s, 1.0)
    d = jnp.where(s > 0, target(x_t / safe, t / safe), target.mean)
    return (x_t - d) / t
model = gm.denoisers.from_velocity(exact_velocity)
grid = gm.schedules.uniform_t(lin, 20)
print("first sigmas:", np.asarray(grid[:3]))
x = gm.sample(model, gm.samplers.Euler(grid), key, (2048, 2))
print("component weights:", np.round(np.bincount(np.asarray(target.component_of(x)), minlength=8) / 2048, 3))

# %% [markdown]
# ## Likelihood through the probability-flow ODE

# %%
x = target.sample(jax.random.key(1), 8)
lp = gm.log_prob(target, x, key)
exact = target.log_prob(x, 0.002)         # the data convolved with N(0, sigma_min^2)
print(np.round(np.asarray(lp), 3)); print(np.round(np.asarray(exact), 3))
