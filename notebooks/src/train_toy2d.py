# %% [markdown]
# # Training a flow-matching and an EDM model on a 2-D toy, then comparing samplers
#
# Two small MLPs (`gm.nets.MLP`, 3 x 128, SiLU) learn the *two moons* toy: one by conditional flow matching
# on the Linear path (a velocity `gm.models.PathModel`), one by EDM's denoising loss under EDM
# preconditioning (`gm.models.EDMModel`). Both are trained by `gm.train.fit` (AdamW with warmup and cosine
# decay, EMA of the weights) and are then just *models*: `gm.sample` runs any sampler on either, so we
# can compare Euler, Heun, DPM-Solver++(2M) and an adaptive Dopri5 ODE solve at equal numbers of network
# evaluations (NFE). Quality is the sliced Wasserstein distance (swd) to fresh data, divided by the swd
# between two fresh data sets of the same size (1.0 = as close as a second data set).

# %%
%matplotlib inline
import time
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
plt.rcParams.update({"figure.dpi": 72, "figure.facecolor": "white"})   # small, opaque figures
from flax import nnx
import genmodels as gm

DATASET, STEPS, BATCH, N = "moons", 2000, 256, 4000
data = gm.data.toy(DATASET)                      # (key, n) -> (n, 2), normalised to unit variance
ref, ref2 = data(jax.random.key(100), N), data(jax.random.key(101), N)
proj = jax.random.key(102)                       # the same random projections for every swd
baseline = float(gm.metrics.sliced_wasserstein(proj, ref2, ref))
print(f"swd between two fresh data sets of {N} points: {baseline:.4f}")

# %% [markdown]
# ## Training: one `gm.train.fit` call per model

# %%
def train(name, model, loss, seed):
    opt = gm.train.adamw(gm.train.warmup_cosine(2e-3, 100, STEPS, final_fraction=0.05))
    res = gm.train.fit(model, loss, gm.data.toy_dataset(DATASET, BATCH), key=jax.random.key(seed),
                       steps=STEPS, optimizer=opt, ema=gm.train.EMA(0.995),
                       log=gm.train.Logging(every=100, progress=False))
    print(f"{name:14s} {STEPS} steps in {res.wall_time:5.1f} s (compilation included), "
          f"final loss {res.history[-1]['loss']:.3f}")
    return res

t0 = time.perf_counter()
flow = train("flow matching", gm.models.PathModel(gm.nets.MLP(2, 128, 3, rngs=nnx.Rngs(0)), gm.paths.Linear(), gm.denoisers.Velocity()),
             gm.losses.cfm_loss, seed=1)
edm = train("EDM", gm.models.EDMModel(gm.nets.MLP(2, 128, 3, rngs=nnx.Rngs(0)), sigma_data=0.5),
            gm.losses.edm_loss, seed=2)
print(f"both models trained in {time.perf_counter() - t0:.1f} s")

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for ax, (name, res) in zip(axes, (("flow matching", flow), ("EDM", edm))):
    rows = [r for r in res.history if "loss" in r]
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows]); ax.set_title(f"{name}: training loss")
    ax.set_xlabel("step")
plt.show()

# %% [markdown]
# ## Samplers at equal NFE
#
# The flow model's natural grid is uniform in t on the Linear path, starting at $\sigma=\infty$ (t = 1, pure
# noise); the EDM model's is Karras et al.'s grid from $\sigma=80$ to $0.002$. The samplers are the same
# objects for both.

# %%
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

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, mname in zip(axes, models):
    for sname in list(samplers) + ["ODE (Dopri5, adaptive)"]:
        pts = [(nfe, r) for m, s, nfe, r in results if m == mname and s == sname]
        ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "*", label=sname, ms=8 if len(pts) == 1 else 4)
    ax.axhline(1.0, color="k", lw=0.8, ls=":"); ax.axhline(2.0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("NFE (log scale)"); ax.set_title(mname)
    ax.set_xticks([4, 8, 16, 32, 64], ["4", "8", "16", "32", "64"]); ax.minorticks_off()
axes[0].set_ylabel("swd / baseline (1 = a second data set)"); axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## What few steps look like: 8 steps of each sampler

# %%
fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for row, mname in zip(axes, models):
    row[0].scatter(*np.asarray(ref[:1500]).T, s=0.5, alpha=0.5); row[0].set_title("data (1,500 points)", fontsize=9)
    for ax, sname in zip(row[1:], samplers):
        x = pictures[mname, sname, 8][:1500]
        ax.scatter(*x.T, s=0.5, alpha=0.5); ax.set_title(f"{mname}: {sname}", fontsize=9)
    for ax in row:
        ax.set_xlim(-2.5, 2.5); ax.set_ylim(-2.5, 2.5); ax.set_xticks([]); ax.set_yticks([])
plt.show()

# %% [markdown]
# ## Likelihood
#
# `gm.log_prob` integrates the probability-flow ODE with the exact divergence (two dimensions), so both
# models get a test negative log-likelihood in nats, the density their ODE samplers sample from.

# %%
x_test = data(jax.random.key(200), 500)
for mname, model in models.items():
    nll = -float(jnp.mean(gm.log_prob(model, x_test, jax.random.key(0))))
    print(f"{mname:14s} test NLL {nll:.3f} nats")
