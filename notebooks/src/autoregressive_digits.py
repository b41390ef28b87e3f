# %% [markdown]
# # Autoregressive models of binarised 8x8 digits: MADE and NADE
#
# An autoregressive model writes a distribution over $x \in \{0, 1\}^D$ with the chain rule, in an
# ordering $o$ of the dimensions (here raster order, $o_i = i$):
#
# $$p(x) = \prod_{i=1}^{D} p(x_{o_i} \mid x_{o_1}, \dots, x_{o_{i-1}}),
# \qquad p(x_{o_i} = 1 \mid x_{o_{<i}}) = \sigma(l_i(x_{o_{<i}})).$$
#
# Each conditional is a Bernoulli whose logit $l_i$ is computed by a network that must not look at
# $x_{o_i}$ or later dimensions. Then
#
# * the **log-likelihood is exact**: $\log p(x) = \sum_i \big[x_{o_i} l_i - \operatorname{softplus}(l_i)\big]$, one
#   network pass for all $D$ logits, so training is plain maximum likelihood (mean NLL in nats) and test
#   NLL is an honest number, not a bound;
# * the model is **normalised by construction** (each factor sums to one over $x_{o_i}$);
# * **ancestral sampling** is exact: draw $x_{o_1}$, then $x_{o_2}$ given it, and so on, $D$ sequential steps.
#
# **MADE** (Germain et al., 2015) is an MLP whose weight masks cut every path from input $x_{o_j}$ to
# output $l_i$ unless $j < i$. **NADE** (Larochelle and Murray, 2011) shares one hidden layer between the
# conditionals, $h_i = \sigma(c + W_{<i} x_{o_{<i}})$, $l_i = b_i + V_i h_i$, so all $D$ logits cost $O(DH)$
# and sampling updates the running pre-activation in $O(H)$ per step.

# %%
%matplotlib inline
import itertools, time
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
plt.rcParams.update({"figure.dpi": 72, "figure.facecolor": "white"})   # small, opaque figures
from flax import nnx
import genmodels as gm

A = gm.autoregressive
T0 = time.perf_counter()

def grid(images, cols, title=None):
    """Show (N, 8, 8) binary images as a grid."""
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
    plt.show()

# %% [markdown]
# ## Data: scikit-learn's digits, thresholded at intensity 0.5
#
# `gm.data.binary_digits` binarises the 1,797 digits (pixel on when its intensity exceeds 0.5) and splits them
# 1,297 / 250 / 250 with a fixed seed. Flattened in raster order they are $D = 64$ binary dimensions. As a
# yardstick, the best fully factorised model (independent Bernoullis with the training marginals) ignores
# every dependency between pixels.

# %%
data = gm.data.binary_digits(split_seed=0)
train, valid, test = (a.reshape(len(a), 64) for a in (data.train, data.valid, data.test))
D = train.shape[1]
print(data.description)
print("train / valid / test:", train.shape, valid.shape, test.shape, "| fraction of pixels on:", round(float(train.mean()), 3))

marg = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)       # independent Bernoullis (clipped: no zero probabilities)
nll_indep = -float(np.mean(np.sum(test * np.log(marg) + (1 - test) * np.log1p(-marg), axis=1)))
print(f"independent Bernoullis: test NLL {nll_indep:.2f} nats = {nll_indep / (D * np.log(2)):.3f} bits/dim")
grid(test[:16], 16, "test digits")

# %% [markdown]
# ## Training with `gm.train.fit`
#
# The loss is `gm.autoregressive.nll_loss`, the mean $-\log p(x)$ over a batch of 100. `fit` runs 50 Adam
# steps per compiled call, keeps an EMA of the weights and validates it every 100 steps on the validation
# split; `best_model` is the EMA model at its best validation NLL (MADE overfits 1,297 digits quickly). The
# runs are short on purpose; `experiments/binary_density.py` trains these models to convergence.

# %%
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
plt.show()

# %% [markdown]
# ## Exact test log-likelihood
#
# `model.log_prob(x)` is the exact $\log p(x)$ in nats; bits per dimension are $-\log p(x) / (D \ln 2)$.
# It is the sum of the $D$ Bernoulli terms of the conditional logits `model.logits(x)`, which we check too.

# %%
print(f"{'model':24s} {'test NLL (nats)':>16s} {'bits/dim':>9s} {'train NLL':>10s}")
print(f"{'independent Bernoullis':24s} {nll_indep:16.2f} {nll_indep / (D * np.log(2)):9.3f}")
for name, model in models.items():
    t, tr = float(nll(model, test)), float(nll(model, train))
    print(f"{name:24s} {t:16.2f} {t / (D * np.log(2)):9.3f} {tr:10.2f}")
x = jnp.asarray(test[:5])
for name, model in models.items():
    chain = A.bernoulli_log_prob(x, model.logits(x))      # sum_i [x_i l_i - softplus(l_i)]
    print(f"{name}: max |log_prob - sum of conditional terms| = {float(jnp.max(jnp.abs(model.log_prob(x) - chain))):.1e}")

# %% [markdown]
# ## Ancestral samples
#
# `gm.sample(model, gm.samplers.Ancestral(), key, (n, 64))` draws $x_{o_1}, x_{o_2}, \dots$ in turn inside one
# compiled loop (NADE incrementally, MADE by re-running its network once per dimension).

# %%
for i, (name, model) in enumerate(models.items()):
    samples = gm.sample(model, gm.samplers.Ancestral(), jax.random.key(10 + i), (48, D))
    grid(samples, 16, f"{name}: 48 ancestral samples")

# %% [markdown]
# ## Completions: top half given, bottom half sampled
#
# In raster order the top half of an 8x8 digit is the first $k = 32$ dimensions, so sampling
# $p(x_{33}, \dots, x_{64} \mid x_1, \dots, x_{32})$ is ancestral sampling started at step $k$ with the given
# prefix: `gm.autoregressive.complete(model, key, x, num_known=32)`. Each row shows a test digit, the half the
# model sees (grey: hidden), then four completions.

# %%
digits = test[16:22]
given = digits.reshape(-1, 8, 8).copy(); given[:, 4:] = 0.5
for i, (name, model) in enumerate(models.items()):
    comp = A.complete(model, jax.random.key(20 + i), np.repeat(digits, 4, axis=0), 32)   # (6 * 4, 64)
    rows = np.concatenate([digits.reshape(-1, 1, 8, 8), given[:, None], np.asarray(comp).reshape(-1, 4, 8, 8)], axis=1)
    assert np.array_equal(np.asarray(comp)[:, :32], np.repeat(digits, 4, axis=0)[:, :32])   # the top half is kept
    grid(rows, 6, f"{name}: truth | given | 4 completions")

# %% [markdown]
# ## Normalisation, checked by enumeration
#
# For $D = 10$ all $2^{10} = 1024$ states can be listed, so $\sum_x p(x) = 1$ can be checked directly. The
# small models get random parameters (their initial values plus $\mathcal N(0, 1)$ noise, so the distributions
# are far from uniform; NADE with a random ordering): normalisation comes from the masks and the chain rule,
# not from anything learned.

# %%
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
