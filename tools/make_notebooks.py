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
    (
        "md",
        """
# The genmodels sampler API

Everything continuous in genmodels is a Gaussian path $x_t = s(t)\\,(x_0 + \\sigma(t)\\,\\varepsilon)$ (Karras et al. 2022).
Samplers work in the scaled coordinates $\\hat x = x_0 + \\sigma\\varepsilon$ and only ask the model for a
denoiser $D(\\hat x, \\sigma) = \\mathbb E[x_0 \\mid \\hat x]$. This notebook walks through paths, schedules and
samplers on an analytic Gaussian mixture, whose exact denoiser makes every error the sampler's own.
""",
    ),
    (
        "code",
        """
import jax, jax.numpy as jnp, numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import genmodels as gm
key = jax.random.key(0)
""",
    ),
    ("md", "## Paths: $s(t)$ and $\\sigma(t)$ with the published defaults"),
    (
        "code",
        """
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
""",
    ),
    ("md", "## Schedules: descending sigma arrays ending in 0 (k-diffusion convention)"),
    (
        "code",
        """
grids = {"karras(10)": gm.schedules.karras(10), "log_uniform(10)": gm.schedules.log_uniform(10),
         "uniform_t(VP, 10)": gm.schedules.uniform_t(gm.paths.VP(), 10),
         "uniform_t(Linear, 10)": gm.schedules.uniform_t(gm.paths.Linear(), 10)}
for name, g in grids.items():
    print(f"{name:22s}", np.array2string(np.asarray(g), precision=3, max_line_width=200))
""",
    ),
    ("md", "## Samplers on eight Gaussians, driven by the exact denoiser"),
    (
        "code",
        """
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
""",
    ),
    ("md", "## Trajectories: `save_trajectory=True` keeps every state"),
    (
        "code",
        """
sol = gm.solve(target, gm.samplers.Heun(gm.schedules.karras(18)), key, (64, 2), save_trajectory=True)
traj = np.asarray(sol.trajectory)            # (steps + 1, 64, 2), row 0 at sigma_max
scaled = traj / np.sqrt(1 + np.asarray(sol.levels)[:, None, None] ** 2)   # VP-scaled for plotting
plt.figure(figsize=(4, 4))
for i in range(64):
    plt.plot(scaled[:, i, 0], scaled[:, i, 1], lw=0.6)
plt.scatter(*traj[-1].T, s=6, c="k"); plt.title("probability-flow ODE paths (VP-scaled)")
print(traj.shape, sol.levels[:3])
""",
    ),
    (
        "md",
        """
## Flow matching from pure noise at $t=1$

A velocity model on the Linear path $x_t = (1-t)x_0 + t\\varepsilon$ becomes a denoiser with
`gm.denoisers.from_velocity`; its `uniform_t` grid starts at $\\sigma=\\infty$ exactly.
""",
    ),
    (
        "code",
        """
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
""",
    ),
    ("md", "## Likelihood through the probability-flow ODE"),
    (
        "code",
        """
x = target.sample(jax.random.key(1), 8)
lp = gm.log_prob(target, x, key)
exact = target.log_prob(x, 0.002)         # the data convolved with N(0, sigma_min^2)
print(np.round(np.asarray(lp), 3)); print(np.round(np.asarray(exact), 3))
""",
    ),
]


TRAIN_TOY2D = [
    (
        "md",
        """
# Training a flow-matching and an EDM model on a 2-D toy, then comparing samplers

Two small MLPs (`gm.nets.MLP`, 3 x 128, SiLU) learn the *two moons* toy: one by conditional flow matching
on the Linear path (a velocity `gm.models.PathModel`), one by EDM's denoising loss under EDM
preconditioning (`gm.models.EDMModel`). Both are trained by `gm.train.fit` (AdamW with warmup and cosine
decay, EMA of the weights) and are then just *models*: `gm.sample` runs any sampler on either, so we
can compare Euler, Heun, DPM-Solver++(2M) and an adaptive Dopri5 ODE solve at equal numbers of network
evaluations (NFE). Quality is the sliced Wasserstein distance (swd) to fresh data, divided by the swd
between two fresh data sets of the same size (1.0 = as close as a second data set).
""",
    ),
    (
        "code",
        """
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
""",
    ),
    ("md", "## Training: one `gm.train.fit` call per model"),
    (
        "code",
        """
def train(model, loss, seed):
    opt = gm.train.adamw(gm.train.warmup_cosine(2e-3, 100, STEPS, final_fraction=0.05))
    res = gm.train.fit(model, loss, gm.data.toy_dataset(DATASET, BATCH), key=jax.random.key(seed),
                       steps=STEPS, optimizer=opt, ema=gm.train.EMA(0.995),
                       log=gm.train.Logging(every=100, progress=False))
    print(f"{type(model).__name__:10s} {STEPS} steps in {res.wall_time:5.1f} s (compilation included), "
          f"final loss {res.history[-1]['loss']:.3f}")
    return res

t0 = time.perf_counter()
flow = train(gm.models.PathModel(gm.nets.MLP(2, 128, 3, rngs=nnx.Rngs(0)), gm.paths.Linear(), gm.denoisers.Velocity()),
             gm.losses.cfm_loss, seed=1)
edm = train(gm.models.EDMModel(gm.nets.MLP(2, 128, 3, rngs=nnx.Rngs(0)), sigma_data=0.5),
            gm.losses.edm_loss, seed=2)
print(f"both models trained in {time.perf_counter() - t0:.1f} s")

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for ax, (name, res) in zip(axes, (("flow matching", flow), ("EDM", edm))):
    rows = [r for r in res.history if "loss" in r]
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows]); ax.set_title(f"{name}: training loss")
    ax.set_xlabel("step")
""",
    ),
    (
        "md",
        """
## Samplers at equal NFE

The flow model's natural grid is uniform in t on the Linear path, starting at $\\sigma=\\infty$ (t = 1, pure
noise); the EDM model's is Karras et al.'s grid from $\\sigma=80$ to $0.002$. The samplers are the same
objects for both.
""",
    ),
    (
        "code",
        """
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
""",
    ),
    (
        "code",
        """
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, mname in zip(axes, models):
    for sname in list(samplers) + ["ODE (Dopri5, adaptive)"]:
        pts = [(nfe, r) for m, s, nfe, r in results if m == mname and s == sname]
        ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "*", label=sname, ms=8 if len(pts) == 1 else 4)
    ax.axhline(1.0, color="k", lw=0.8, ls=":"); ax.axhline(2.0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("NFE"); ax.set_title(mname)
axes[0].set_ylabel("swd / baseline"); axes[1].legend(fontsize=8)
""",
    ),
    ("md", "## What few steps look like: 8 steps of each sampler"),
    (
        "code",
        """
fig, axes = plt.subplots(2, 4, figsize=(12, 6))
for row, mname in zip(axes, models):
    row[0].scatter(*np.asarray(ref).T, s=0.5, alpha=0.4); row[0].set_title("data")
    for ax, sname in zip(row[1:], samplers):
        x = pictures[mname, sname, 8]
        ax.scatter(*x.T, s=0.5, alpha=0.4); ax.set_title(f"{mname}: {sname}", fontsize=9)
    for ax in row:
        ax.set_xlim(-2.5, 2.5); ax.set_ylim(-2.5, 2.5); ax.set_xticks([]); ax.set_yticks([])
""",
    ),
    (
        "md",
        """
## Likelihood

`gm.log_prob` integrates the probability-flow ODE with the exact divergence (two dimensions), so both
models get a test negative log-likelihood in nats, the density their ODE samplers sample from.
""",
    ),
    (
        "code",
        """
x_test = data(jax.random.key(200), 500)
for mname, model in models.items():
    nll = -float(jnp.mean(gm.log_prob(model, x_test, jax.random.key(0))))
    print(f"{mname:14s} test NLL {nll:.3f} nats")
""",
    ),
]


AUTOREGRESSIVE_DIGITS = [
    (
        "md",
        """
# Autoregressive models of binarised 8x8 digits: MADE and NADE

An autoregressive model writes a distribution over $x \\in \\{0, 1\\}^D$ with the chain rule, in an
ordering $o$ of the dimensions (here raster order, $o_i = i$):

$$p(x) = \\prod_{i=1}^{D} p(x_{o_i} \\mid x_{o_1}, \\dots, x_{o_{i-1}}),
\\qquad p(x_{o_i} = 1 \\mid x_{o_{<i}}) = \\sigma(l_i(x_{o_{<i}})).$$

Each conditional is a Bernoulli whose logit $l_i$ is computed by a network that must not look at
$x_{o_i}$ or later dimensions. Then

* the **log-likelihood is exact**: $\\log p(x) = \\sum_i \\big[x_{o_i} l_i - \\operatorname{softplus}(l_i)\\big]$, one
  network pass for all $D$ logits, so training is plain maximum likelihood (mean NLL in nats) and test
  NLL is an honest number, not a bound;
* the model is **normalised by construction** (each factor sums to one over $x_{o_i}$);
* **ancestral sampling** is exact: draw $x_{o_1}$, then $x_{o_2}$ given it, and so on, $D$ sequential steps.

**MADE** (Germain et al., 2015) is an MLP whose weight masks cut every path from input $x_{o_j}$ to
output $l_i$ unless $j < i$. **NADE** (Larochelle and Murray, 2011) shares one hidden layer between the
conditionals, $h_i = \\sigma(c + W_{<i} x_{o_{<i}})$, $l_i = b_i + V_i h_i$, so all $D$ logits cost $O(DH)$
and sampling updates the running pre-activation in $O(H)$ per step.
""",
    ),
    (
        "code",
        """
import io, itertools, time
import jax, jax.numpy as jnp, numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from flax import nnx
from IPython.display import Image, display
import genmodels as gm

A = gm.autoregressive
T0 = time.perf_counter()

def show(fig):
    \"\"\"Display a figure inline under the Agg backend (rendered in memory, no file written).\"\"\"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    display(Image(buf.getvalue()))

def grid(images, cols, title=None):
    \"\"\"Show (N, 8, 8) binary images as a grid.\"\"\"
    images = np.asarray(images).reshape(-1, 8, 8)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.55 * cols, 0.55 * rows + (0.3 if title else 0)), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < len(images):
            ax.imshow(images[k], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([]); ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(k < len(images))
    if title:
        fig.suptitle(title, fontsize=9)
    show(fig)
""",
    ),
    (
        "md",
        """
## Data: scikit-learn's digits, thresholded at intensity 0.5

`gm.data.binary_digits` binarises the 1,797 digits (pixel on when its intensity exceeds 0.5) and splits them
1,297 / 250 / 250 with a fixed seed. Flattened in raster order they are $D = 64$ binary dimensions. As a
yardstick, the best fully factorised model (independent Bernoullis with the training marginals) ignores
every dependency between pixels.
""",
    ),
    (
        "code",
        """
data = gm.data.binary_digits(split_seed=0)
train, valid, test = (a.reshape(len(a), 64) for a in (data.train, data.valid, data.test))
D = train.shape[1]
print(data.description)
print("train / valid / test:", train.shape, valid.shape, test.shape, "| fraction of pixels on:", round(float(train.mean()), 3))

marg = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)       # independent Bernoullis (clipped: no zero probabilities)
nll_indep = -float(np.mean(np.sum(test * np.log(marg) + (1 - test) * np.log1p(-marg), axis=1)))
print(f"independent Bernoullis: test NLL {nll_indep:.2f} nats = {nll_indep / (D * np.log(2)):.3f} bits/dim")
grid(test[:16], 16, "test digits")
""",
    ),
    (
        "md",
        """
## Training with `gm.train.fit`

The loss is `gm.autoregressive.nll_loss`, the mean $-\\log p(x)$ over a batch of 100. `fit` runs 50 Adam
steps per compiled call, keeps an EMA of the weights and validates it every 100 steps on the validation
split; `best_model` is the EMA model at its best validation NLL (MADE overfits 1,297 digits quickly). The
runs are short on purpose; `experiments/binary_density.py` trains these models to convergence.
""",
    ),
    (
        "code",
        """
STEPS = 1500
nll = jax.jit(lambda model, x: -jnp.mean(model.log_prob(x)))     # mean NLL in nats

def train_model(model, steps=STEPS, lr=3e-3, seed=0):
    res = gm.train.fit(model, A.nll_loss, gm.data.ArrayDataset(train, 100), key=jax.random.key(seed),
                       steps=steps, optimizer=gm.train.adamw(lr), ema=gm.train.EMA(0.99),
                       validation=gm.train.Validation(lambda m: nll(m, valid), every=100),
                       log=gm.train.Logging(every=100, progress=False),
                       execution=gm.train.Execution(steps_per_call=50))
    best_step = [r for r in res.history if "best_step" in r][-1]["best_step"]
    print(f"{type(model).__name__:5s} {steps} steps in {res.wall_time:4.1f} s (compilation included), "
          f"best validation NLL {res.best_value:.2f} nats at step {best_step}")
    return res

runs = {"MADE": train_model(A.MADE(D, (500,), rngs=nnx.Rngs(0))),      # one hidden layer of 500, one mask
        "NADE": train_model(A.NADE(D, 500, rngs=nnx.Rngs(0)))}         # H = 500
models = {name: res.best_model for name, res in runs.items()}

fig, ax = plt.subplots(figsize=(5, 3))
for name, res in runs.items():
    tr = [r for r in res.history if "loss" in r]
    va = [r for r in res.history if "validation" in r]
    line, = ax.plot([r["step"] for r in tr], [r["loss"] for r in tr], label=f"{name} train (raw weights)")
    ax.plot([r["step"] for r in va], [r["validation"] for r in va], "--", color=line.get_color(), label=f"{name} valid (EMA)")
ax.axhline(nll_indep, color="k", lw=0.8, ls=":", label="independent (test)")
ax.set_xlabel("step"); ax.set_ylabel("NLL (nats)"); ax.set_ylim(12, 30); ax.legend(fontsize=7)
show(fig)
""",
    ),
    (
        "md",
        """
## Exact test log-likelihood

`model.log_prob(x)` is the exact $\\log p(x)$ in nats; bits per dimension are $-\\log p(x) / (D \\ln 2)$.
It is the sum of the $D$ Bernoulli terms of the conditional logits `model.logits(x)`, which we check too.
""",
    ),
    (
        "code",
        """
print(f"{'model':24s} {'test NLL (nats)':>16s} {'bits/dim':>9s} {'train NLL':>10s}")
print(f"{'independent Bernoullis':24s} {nll_indep:16.2f} {nll_indep / (D * np.log(2)):9.3f}")
for name, model in models.items():
    t, tr = float(nll(model, test)), float(nll(model, train))
    print(f"{name:24s} {t:16.2f} {t / (D * np.log(2)):9.3f} {tr:10.2f}")
x = jnp.asarray(test[:5])
for name, model in models.items():
    chain = A.bernoulli_log_prob(x, model.logits(x))      # sum_i [x_i l_i - softplus(l_i)]
    print(f"{name}: max |log_prob - sum of conditional terms| = {float(jnp.max(jnp.abs(model.log_prob(x) - chain))):.1e}")
""",
    ),
    (
        "md",
        """
## Ancestral samples

`gm.sample(model, gm.samplers.Ancestral(), key, (n, 64))` draws $x_{o_1}, x_{o_2}, \\dots$ in turn inside one
compiled loop (NADE incrementally, MADE by re-running its network once per dimension).
""",
    ),
    (
        "code",
        """
for i, (name, model) in enumerate(models.items()):
    samples = gm.sample(model, gm.samplers.Ancestral(), jax.random.key(10 + i), (48, D))
    grid(samples, 16, f"{name}: 48 ancestral samples")
""",
    ),
    (
        "md",
        """
## Completions: top half given, bottom half sampled

In raster order the top half of an 8x8 digit is the first $k = 32$ dimensions, so sampling
$p(x_{33}, \\dots, x_{64} \\mid x_1, \\dots, x_{32})$ is ancestral sampling started at step $k$ with the given
prefix: `gm.autoregressive.complete(model, key, x, num_known=32)`. Each row shows a test digit, the half the
model sees (grey: hidden), then four completions.
""",
    ),
    (
        "code",
        """
digits = test[16:22]
given = digits.reshape(-1, 8, 8).copy(); given[:, 4:] = 0.5
for i, (name, model) in enumerate(models.items()):
    comp = A.complete(model, jax.random.key(20 + i), np.repeat(digits, 4, axis=0), 32)   # (6 * 4, 64)
    rows = np.concatenate([digits.reshape(-1, 1, 8, 8), given[:, None], np.asarray(comp).reshape(-1, 4, 8, 8)], axis=1)
    assert np.array_equal(np.asarray(comp)[:, :32], np.repeat(digits, 4, axis=0)[:, :32])   # the top half is kept
    grid(rows, 6, f"{name}: truth | given | 4 completions")
""",
    ),
    (
        "md",
        """
## Normalisation, checked by enumeration

For $D = 10$ all $2^{10} = 1024$ states can be listed, so $\\sum_x p(x) = 1$ can be checked directly. The
small models get random parameters (their initial values plus $\\mathcal N(0, 1)$ noise, so the distributions
are far from uniform; NADE with a random ordering): normalisation comes from the masks and the chain rule,
not from anything learned.
""",
    ),
    (
        "code",
        """
n = 10
states = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=n)), jnp.float32)    # (1024, 10)

def randomised(model, seed):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)       # add N(0, 1) to every parameter
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [p + jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)]
    return nnx.merge(graphdef, jax.tree.unflatten(tree, noisy), rest)

small = {"MADE": randomised(A.MADE(n, (32, 32), direct=True, rngs=nnx.Rngs(1)), 2),
         "NADE": randomised(A.NADE(n, 16, ordering=np.random.default_rng(0).permutation(n), rngs=nnx.Rngs(1)), 3)}
for name, model in small.items():
    lp = np.asarray(model.log_prob(states), np.float64)
    total = np.exp(lp).sum()
    print(f"{name}: sum over 2^{n} states of exp(log_prob) = {total:.8f} (|1 - sum| = {abs(1 - total):.1e}); "
          f"log p ranges over [{lp.min():.2f}, {lp.max():.2f}] (uniform: {-n * np.log(2):.2f})")
    assert abs(total - 1) < 1e-5
print(f"notebook ran in {time.perf_counter() - T0:.0f} s")
""",
    ),
]


if __name__ == "__main__":
    build("sampler_api.ipynb", SAMPLER_API)
    print("wrote", HERE / "sampler_api.ipynb")
    build("train_toy2d.ipynb", TRAIN_TOY2D)
    print("wrote", HERE / "train_toy2d.ipynb")
    build("autoregressive_digits.ipynb", AUTOREGRESSIVE_DIGITS)
    print("wrote", HERE / "autoregressive_digits.ipynb")
