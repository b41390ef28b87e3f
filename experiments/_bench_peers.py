"""The peer side of ``bench_samplers.py``: torch twins of the benchmark denoisers, k-diffusion's
``sampling.py`` loaded without its package, the same sampling run in k-diffusion / torchdiffeq, and the
likelihood baselines (score_sde's host scipy loop, k-diffusion's ``log_likelihood``). Shared solve
settings and goals live here so both files use one copy."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
import pathlib
import sys
import time
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

GOAL_SPEEDUP = 3.0
GOAL_LL_KDIFF, GOAL_LL_SCIPY = 10.0, 4.0
RTOL = ATOL = 1e-5
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def torch_twin(kind, model, device):
    """The same denoiser in torch: ``f(x, sigma)`` with sigma a 0-d tensor or one value per row.

    k-diffusion passes ``sigma * ones(batch)``, all rows equal; the mixture twin then uses row 0's
    sigma, so it does no per-row work the JAX model (scalar sigma) does not do either.
    """
    import torch

    def t(a):
        return torch.from_numpy(np.asarray(a)).to(device)

    if kind == "mlp":
        ws, bs = [t(w) for w in model.weights], [t(b) for b in model.biases]

        def mlp(x, sigma):
            sigma = sigma.reshape(-1, 1) if sigma.ndim else sigma
            total = sigma**2 + 0.25
            c_in = torch.rsqrt(total)
            h = torch.cat([c_in * x, (0.25 * torch.log(sigma)).expand(x.shape[0], 1)], dim=-1)
            for w, b in zip(ws[:-1], bs[:-1], strict=False):
                h = torch.nn.functional.silu(torch.addmm(b, h, w))
            return (0.25 / total) * x + (0.5 * sigma * c_in) * torch.addmm(bs[-1], h, ws[-1])

        return mlp
    logw, mu, var0 = t(model.log_weights), t(model.means), t(model.stds) ** 2

    def mixture(x, sigma):
        s = sigma.reshape(-1)[0] if sigma.ndim else sigma
        var = var0 + s**2
        diff = x[:, None, :] - mu
        lp = logw - 0.5 * (diff**2 / var + torch.log(2 * math.pi * var)).sum(-1)
        r = torch.softmax(lp, dim=-1)[..., None]
        return (r * (mu + (var0 / var) * diff)).sum(-2)

    return mixture


def load_kdiffusion_sampling():
    """k_diffusion/sampling.py on its own, under a private package name, with ``utils`` stubbed."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        return None
    root = pathlib.Path(spec.submodule_search_locations[0])
    pkg = types.ModuleType("_kd_bench")
    pkg.__path__ = [str(root)]
    utils = types.ModuleType("_kd_bench.utils")
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    pkg.utils = utils
    sys.modules.update({"_kd_bench": pkg, "_kd_bench.utils": utils})
    mspec = importlib.util.spec_from_file_location("_kd_bench.sampling", root / "sampling.py")
    mod = importlib.util.module_from_spec(mspec)
    sys.modules["_kd_bench.sampling"] = mod
    mspec.loader.exec_module(mod)
    return mod


SETTLE_S = 0.005
# "wall": wall-clock seconds; "cpu": CPU seconds of the process (all its threads), which a loaded machine
# does not inflate when each side runs one thread (bench_samplers --clock cpu)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_CLOCK = [time.perf_counter]


def use_clock(name: str) -> None:
    _CLOCK[0] = CLOCKS[name]


def now() -> float:
    return _CLOCK[0]()


def blocking_time(fn, settle=False):
    """Seconds of ``fn()`` (which must block). ``settle``: first sleep ``SETTLE_S``, so that the worker
    threads of the other side (torch's OpenMP team, XLA's Eigen pool) have stopped spinning when the timed
    call starts (on 2 cores a spinning team of the previous call slows the next one)."""
    if settle:
        time.sleep(SETTLE_S)
    t0 = now()
    fn()
    return now() - t0


# gm.samplers class -> k-diffusion function implementing the same algorithm on the same sigmas (used where
# both names exist: a sampler that has not landed, or a k-diffusion without the function, is skipped)
KDIFF_PEERS = {
    "Euler": "sample_euler", "Heun": "sample_heun", "EulerAncestral": "sample_euler_ancestral",
    "DPMSolverPP2M": "sample_dpmpp_2m", "DPMSolverPP2MSDE": "sample_dpmpp_2m_sde",
    "DPMSolverPP3MSDE": "sample_dpmpp_3m_sde", "DPMSolverPP2S": "sample_dpmpp_2s_ancestral", "LMS": "sample_lms",
}  # fmt: skip
# sampler options passed to the peer under the same name (where the peer's function takes them)
SHARED_OPTIONS = ("eta", "s_noise", "s_churn", "s_tmin", "s_tmax", "order")


def peer_for(name, env):
    """The peer of the sampler class ``name``: a k-diffusion function name, "torchdiffeq", or None."""
    if name == "ODE":
        return "torchdiffeq" if env.args.torchdiffeq else None
    fn = KDIFF_PEERS.get(name)
    return fn if fn and env.kd is not None and hasattr(env.kd, fn) else None


def peer_options(fn, sampler):
    """Keyword arguments of the k-diffusion function ``fn`` that mirror the sampler's options."""
    params = inspect.signature(fn).parameters
    names = {f.name for f in dataclasses.fields(sampler)}
    opts = {k: float(np.asarray(getattr(sampler, k))) for k in SHARED_OPTIONS if k in params and k in names}
    if "order" in opts:
        opts["order"] = int(opts["order"])
    solver_type = getattr(sampler, "solver_type", None)
    if solver_type is not None and "solver_type" in params:  # DPMSolverPP2MSDE: MidpointType / HeunType values
        opts["solver_type"] = type(solver_type).__name__.removesuffix("Type").lower()
    return opts


def _has_noise(fn):
    return "noise_sampler" in inspect.signature(fn).parameters


def replayed_noise(sampler, key, shape, env):
    """k-diffusion ``noise_sampler`` returning, at step i (found by sigma_i), genmodels' own draw of step i,
    ``normal(fold_in(split(key)[1], i), shape)`` (the step samplers' convention), so that a stochastic pair
    can be compared sample by sample. A sampler that draws otherwise simply disagrees (reported)."""
    run_key = jax.random.split(key)[1]
    sig = np.asarray(sampler.sigmas, np.float64)
    zs = [env.to_torch(jax.random.normal(jax.random.fold_in(run_key, i), shape)) for i in range(len(sig) - 1)]
    return lambda sigma, sigma_next: zs[int(np.argmin(np.abs(sig - float(sigma))))]


def _compare(theirs, ours, tol_scale):
    """Per-sample largest coordinate difference: (max, p99, median, scale, tolerance, agree)."""
    err = np.abs(theirs - ours).reshape(len(ours), -1).max(axis=1)
    scale = float(np.max(np.abs(theirs)))
    tol = tol_scale * max(scale, 1.0)
    p99 = float(np.quantile(err, 0.99))
    return {"max_abs_diff": float(err.max()), "p99_abs_diff": p99, "median_abs_diff": float(np.median(err)),
            "peer_max_abs": scale, "agree_tol": tol, "agree": p99 <= tol}  # fmt: skip


def peer_agreement(fn_name, sampler, model, kind, noise, key, env):
    """Agreement of genmodels and k-diffusion outputs from the same noise. Deterministic options: as they
    are. Stochastic ones: (a) with eta = 0 on both sides (the same update without noise) and (b) with the
    noise replayed into k-diffusion (``replayed_noise``); both reported, (a) decides ``agree``."""
    import genmodels as gm

    fn, tmodel, tnoise = getattr(env.kd, fn_name), torch_twin(kind, model, env.device), env.to_torch(noise)
    sigmas = env.torch.from_numpy(np.asarray(sampler.sigmas)).to(env.device)

    def theirs(s, **extra):
        out = fn(tmodel, sigmas[0] * tnoise, sigmas, disable=True, **peer_options(fn, s), **extra)
        return out.cpu().numpy()

    def ours(s):
        return np.asarray(gm.sample(model, s, key, noise.shape, noise=noise))

    if sampler.deterministic:
        return {"agreement": "deterministic", **_compare(theirs(sampler), ours(sampler), 1e-4)}
    res = {"agreement": "eta=0"}
    if "eta" in {f.name for f in dataclasses.fields(sampler)}:
        det = eqx.tree_at(lambda s: s.eta, sampler, jnp.zeros_like(sampler.eta))
        res.update(_compare(theirs(det), ours(det), 1e-4))
    if _has_noise(fn):
        replay = _compare(theirs(sampler, noise_sampler=replayed_noise(sampler, key, noise.shape, env)),
                          ours(sampler), 1e-4)  # fmt: skip
        res["replayed_noise"] = {k: replay[k] for k in ("max_abs_diff", "p99_abs_diff", "agree")}
    return res


def bench_peer(peer, sampler, model, kind, noise, ours, our_run, env, key=None):
    """The same sampling run with the peer: k-diffusion's sampler on the same schedule (and options), or
    torchdiffeq. Peer and genmodels calls alternate one by one; the speedup is the median of the paired
    ratios. A stochastic k-diffusion sampler gets independent normals per step (``torch.randn_like``, the
    law genmodels' steps draw) instead of its default Brownian tree, whose cost is no part of the method."""
    torch, device, sync = env.torch, env.device, env.sync
    tmodel = torch_twin(kind, model, device)
    tnoise = env.to_torch(noise)
    count = [0]

    def counted(x, sigma):
        count[0] += 1
        return tmodel(x, sigma)

    if peer == "torchdiffeq":
        from torchdiffeq import odeint

        # the same ODE in the same variable as gm.samplers.ODE: v = -log sigma, dx/dv = D(x, e^-v) - x
        span = torch.tensor([-math.log(SIGMA_MAX), -math.log(SIGMA_MIN)], dtype=tnoise.dtype, device=device)

        def run():
            with torch.no_grad():
                out = odeint(lambda v, x: counted(x, torch.exp(-v)) - x, SIGMA_MAX * tnoise, span,
                             rtol=RTOL, atol=ATOL, method="dopri5")[-1]  # fmt: skip
            sync()
            return out
    else:
        fn = getattr(env.kd, peer)
        sigmas = torch.from_numpy(np.asarray(sampler.sigmas)).to(device)
        opts = peer_options(fn, sampler)
        if not sampler.deterministic and _has_noise(fn):
            opts["noise_sampler"] = lambda sigma, sigma_next: torch.randn_like(tnoise)

        def run():
            out = fn(counted, sigmas[0] * tnoise, sigmas, disable=True, **opts)
            sync()
            return out

    count[0] = 0
    theirs = run().cpu().numpy()
    peer_nfe = count[0]
    pairs = []
    while len(pairs) < 3 or (sum(p[0] + p[1] for p in pairs) < env.args.budget and len(pairs) < 15):
        pairs.append((blocking_time(run, settle=True), blocking_time(our_run, settle=True)))
    med = float(np.median([p[0] for p in pairs]))
    speedup = float(np.median([p[0] / p[1] for p in pairs]))
    row = {
        "peer": "k-diffusion " + peer if peer != "torchdiffeq" else "torchdiffeq dopri5", "peer_nfe": peer_nfe,
        "peer_options": {k: v for k, v in (opts.items() if peer != "torchdiffeq" else ()) if k != "noise_sampler"},
        "peer_median_s": med, "peer_reps": len(pairs), "speedup": speedup, "speedup_goal": GOAL_SPEEDUP,
        "speedup_ok": speedup >= GOAL_SPEEDUP,
    }  # fmt: skip
    # per-sample error; a few samples near component boundaries amplify float32 rounding (either library
    # against a float64 run differs as much), so agreement is judged on the 99th percentile
    if peer == "torchdiffeq":
        row.update({"agreement": "adaptive (different steps)", **_compare(theirs, ours, 1e-2)})
    else:
        row.update(peer_agreement(peer, sampler, model, kind, noise, key, env))
    return row


def bench_scipy_ll(mix, x, truth, runs, args):
    """score_sde's likelihood loop: scipy RK45 on the host, jitted drift and divergence at every evaluation.

    As score_sde's ``likelihood.py``: one compiled drift function and one compiled divergence function
    (Hutchinson: the gradient of sum(f * eps), which runs the model again) per evaluation. Variant
    ``fused`` instead calls one compiled function returning both (a stricter baseline than score_sde).
    score_sde's VE time is affine in log sigma, so the solve runs in u = log sigma, as gm.log_prob does:
    dx/du = f = x - D(x, e^u), d delta/du = div f.
    """
    from scipy.integrate import solve_ivp

    n, dim = x.shape
    basis = jnp.broadcast_to(jnp.eye(dim, dtype=x.dtype)[:, None, :], (dim, n, dim))
    eps = jax.random.rademacher(jax.random.key(7), x.shape, dtype=x.dtype)

    def f(y, u):
        return y - mix(y, jnp.exp(u))

    def exact_div(y, u):
        return jnp.einsum("jbj->b", jax.vmap(jax.linearize(lambda z: f(z, u), y)[1])(basis))

    def hutch_div(y, u):  # score_sde's get_div_fn: grad of sum(f * eps), dotted with eps
        return jnp.sum(jax.grad(lambda z: jnp.sum(f(z, u) * eps))(y) * eps, axis=-1)

    def fused_exact(y, u):
        fy, lin = jax.linearize(lambda z: f(z, u), y)
        return fy, jnp.einsum("jbj->b", jax.vmap(lin)(basis))

    def fused_hutch(y, u):
        fy, jv = jax.jvp(lambda z: f(z, u), (y,), (eps,))
        return fy, jnp.sum(eps * jv, axis=-1)

    drift = jax.jit(f)
    fields = {
        ("score_sde", "exact"): (lambda y, u, d=jax.jit(exact_div): (drift(y, u), d(y, u))),
        ("score_sde", "hutchinson"): (lambda y, u, d=jax.jit(hutch_div): (drift(y, u), d(y, u))),
        ("fused", "exact"): jax.jit(fused_exact),
        ("fused", "hutchinson"): jax.jit(fused_hutch),
    }
    res = {}
    for (variant, trace), field in fields.items():
        nfev = [0]

        def rhs(u, y, field=field, nfev=nfev):
            nfev[0] += 1
            d, div = field(jnp.asarray(y[: n * dim].reshape(n, dim), jnp.float32), jnp.float32(u))
            return np.concatenate([np.asarray(d, np.float64).ravel(), np.asarray(div, np.float64)])

        def run(rhs=rhs):
            y0 = np.concatenate([np.asarray(x, np.float64).ravel(), np.zeros(n)])
            sol = solve_ivp(rhs, (math.log(SIGMA_MIN), math.log(SIGMA_MAX)), y0, method="RK45", rtol=RTOL, atol=ATOL)
            z, delta = sol.y[: n * dim, -1].reshape(n, dim), sol.y[n * dim :, -1]
            prior = -0.5 * np.sum(z**2, -1) / SIGMA_MAX**2 - dim * np.log(SIGMA_MAX * np.sqrt(2 * np.pi))
            return prior + delta

        lp = run()  # also compiles the jitted field
        nfe = nfev[0]
        pairs = [(blocking_time(run, True), blocking_time(runs[trace], True)) for _ in range(2)]  # alternate with gm
        t, speedup = float(np.median([p[0] for p in pairs])), float(np.median([p[0] / p[1] for p in pairs]))
        key = trace if variant == "score_sde" else f"{trace}_fused"
        res[key] = {"seconds": t, "nfe": nfe, "mean_abs_err_vs_truth": float(np.mean(np.abs(lp - truth))),
                    "speedup": speedup, "speedup_goal": GOAL_LL_SCIPY if variant == "score_sde" else None,
                    "speedup_ok": speedup >= GOAL_LL_SCIPY if variant == "score_sde" else None}  # fmt: skip
        print(f"  scipy RK45 {key}: {res[key]}", file=sys.stderr, flush=True)
    return res


def bench_kdiff_ll(mix, x, truth, runs, env):
    """k-diffusion's log_likelihood (dopri5 in sigma, one Rademacher probe): a warm-up, then one timed run
    between two runs of each gm.log_prob variant (the ratios use their mean)."""
    tmodel = torch_twin("mixture", mix, env.device)
    tx = env.to_torch(x)
    env.torch.manual_seed(0)

    def run():
        out = env.kd.log_likelihood(tmodel, tx, SIGMA_MIN, SIGMA_MAX, atol=ATOL, rtol=RTOL)
        env.sync()
        return out

    lp, info = run()
    before = {k: blocking_time(r, True) for k, r in runs.items()}
    t = blocking_time(run, True)
    ours = {k: 0.5 * (before[k] + blocking_time(r, True)) for k, r in runs.items()}
    err = float(np.mean(np.abs(lp.cpu().numpy() - truth)))
    res = {"seconds": t, "nfe": int(info["fevals"]), "mean_abs_err_vs_truth": err}
    for trace in ("hutchinson", "exact"):
        res[f"speedup_vs_{trace}"] = t / ours[trace]
    res["speedup_goal"] = GOAL_LL_KDIFF
    res["speedup_ok"] = res["speedup_vs_hutchinson"] >= GOAL_LL_KDIFF
    print(f"  k-diffusion log_likelihood: {res}", file=sys.stderr, flush=True)
    return res
