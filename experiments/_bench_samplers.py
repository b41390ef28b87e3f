"""The work of ``experiments/bench_samplers.py`` (imports JAX): sampler and likelihood timings against
k-diffusion, torchdiffeq and score_sde's host loop."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pathlib
import platform
import sys
import time
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import genmodels as gm
from experiments import build, catalog
from experiments._bench_peers import (
    ATOL,
    RTOL,
    SIGMA_MAX,
    SIGMA_MIN,
    bench_kdiff_ll,
    bench_peer,
    bench_scipy_ll,
    blocking_time,
    load_kdiffusion_sampling,
    torch_twin,
)
from experiments.configs.bench_samplers import SAMPLERS, Config

S = gm.schedules
GOAL_OVERHEAD_FIXED, GOAL_OVERHEAD_ODE = 1.10, 1.5


# ----------------------------------------------------------------------------------------------- models
class MLPDenoiser(eqx.Module):
    """D(x, s) = c_skip x + c_out F([c_in x, ln(s)/4]) (EDM preconditioning, sigma_data 0.5); F has
    ``depth`` hidden SiLU layers of ``width`` units. ``sigma`` is a scalar or one value per row."""

    weights: tuple
    biases: tuple

    def __call__(self, x, sigma):
        sigma = jnp.asarray(sigma, x.dtype)
        sigma = sigma if sigma.ndim == 0 else sigma.reshape(-1, 1)
        total = sigma**2 + 0.25
        c_in = jax.lax.rsqrt(total)
        c_noise = jnp.broadcast_to(0.25 * jnp.log(sigma), (x.shape[0], 1))
        h = jnp.concatenate([c_in * x, c_noise], axis=-1)
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=False):
            h = jax.nn.silu(h @ w + b)
        out = h @ self.weights[-1] + self.biases[-1]
        return (0.25 / total) * x + (0.5 * sigma * c_in) * out


def make_mlp(key, dim, width=256, depth=4):
    sizes = [dim + 1] + [width] * depth + [dim]
    keys = jax.random.split(key, len(sizes) - 1)
    ws = tuple(
        jax.random.normal(k, (a, b)) / math.sqrt(a) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=False)
    )
    bs = tuple(0.1 * jax.random.normal(jax.random.fold_in(k, 1), (b,)) for k, b in zip(keys, sizes[1:], strict=False))
    return MLPDenoiser(ws, bs)


# ----------------------------------------------------------------------------------------------- timing
def timed(fn, budget, min_reps=3, max_reps=30, warmup=True):
    """(median, min, reps) of ``fn()`` (which must block), after one warm-up call unless ``warmup=False``."""
    if warmup:
        fn()
    t0 = time.perf_counter()
    fn()
    times = [time.perf_counter() - t0]
    for _ in range(int(np.clip(budget / max(times[0], 1e-9), min_reps, max_reps)) - 1):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times)), len(times)


def first_call(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- samplers
def sampler_specs(steps):
    """class name -> (constructor, kind, peer: the k-diffusion function, "torchdiffeq" or None), for every
    sampler of ``configs.bench_samplers.SAMPLERS``; the fixed-step ones on ``karras(steps)``."""
    karras = S.karras(steps)
    specs = {}
    for name in SAMPLERS:
        entry = catalog.SAMPLERS[name]
        if name == "ode":
            make = functools.partial(
                build.sampler, "ode", sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN, rtol=RTOL, atol=ATOL
            )
            specs[entry.cls] = (make, "adaptive", "torchdiffeq")
        elif name == "langevin":
            specs[entry.cls] = (functools.partial(build.sampler, name, S.log_uniform(10, 0.01, 50.0), steps_per_level=3),
                                "fixed", None)  # fmt: skip
        else:
            specs[entry.cls] = (functools.partial(build.sampler, name, karras), "fixed", entry.k_diffusion)
    return specs


def bench_cell(kind, dim, batch, env):
    """One (denoiser, dim, batch) cell: the denoiser alone, then every sampler (and its peer)."""
    args = env.args
    key = jax.random.key(args.seed)
    model = make_mlp(key, dim) if kind == "mlp" else gm.targets.random_mixture(key, dim, k=8)
    noise = jax.random.normal(jax.random.key(args.seed + 1), (batch, dim))
    den = jax.jit(lambda m, x, s: m(x, s))
    sig = jnp.asarray(1.0, noise.dtype)
    den_call = lambda: den(model, noise, sig).block_until_ready()  # noqa: E731
    t_d, t_d_min, _ = timed(den_call, args.budget, 10, 200)
    cell = {"denoiser": kind, "dim": dim, "batch": batch, "denoiser_call_s": t_d, "denoiser_call_min_s": t_d_min}
    if env.torch is not None:
        torch, tmodel = env.torch, torch_twin(kind, model, env.device)
        tnoise, tsig = env.to_torch(noise), torch.full((batch,), 1.0, device=env.device)

        def tcall():
            with torch.no_grad():
                tmodel(tnoise, tsig)
            env.sync()

        cell["torch_denoiser_call_s"] = timed(tcall, args.budget, 10, 200)[0]
    rows = []
    wanted = {catalog.SAMPLERS[catalog.sampler_name(n)].cls for n in args.samplers}
    for name, (make, skind, peer) in sampler_specs(args.steps).items():
        if name not in wanted:
            continue
        try:
            sampler = make()
            row, run, samples = bench_sampler(name, sampler, skind, model, noise, den_call, t_d, args)
            if peer and env.torch is not None and (peer != "torchdiffeq" or args.torchdiffeq):
                row.update(bench_peer(peer, sampler, model, kind, noise, samples, run, env))
        except Exception as err:  # keep the rest of the run; the failure is reported in the JSON
            row = {"sampler": name, "kind": skind, "error": f"{type(err).__name__}: {err}"[:500]}
        rows.append(row)
        print(f"  {kind} d={dim} B={batch} {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    cell["samplers"] = rows
    return cell


def bench_sampler(name, sampler, skind, model, noise, den_call, t_d, args):
    """Times of ``gm.sample``; each repeat is paired with a burst of denoiser calls timed right after it,
    so that the overhead ratio holds on a machine whose load changes (shared CPUs)."""
    shape, skey = noise.shape, jax.random.key(args.seed + 2)
    sol, t_first = first_call(lambda: jax.block_until_ready(gm.solve(model, sampler, skey, shape, noise=noise)))
    nfe = int(sol.nfe)
    run = lambda: gm.sample(model, sampler, skey, shape, noise=noise).block_until_ready()  # noqa: E731
    times, ratios = [], []
    while len(times) < 3 or (sum(times) < args.budget and len(times) < 30):  # run was warmed by the first call
        times.append(blocking_time(run))
        burst = [blocking_time(den_call) for _ in range(min(nfe, 5))]
        ratios.append(times[-1] / (nfe * float(np.median(burst))))
    med = float(np.median(times))
    goal = GOAL_OVERHEAD_FIXED if skind == "fixed" else GOAL_OVERHEAD_ODE
    overhead = float(np.median(ratios))
    row = {
        "sampler": name, "kind": skind, "nfe": nfe, "median_s": med, "min_s": float(np.min(times)),
        "reps": len(times), "samples_per_s": shape[0] / med, "compile_s": max(t_first - med, 0.0),
        "overhead": overhead, "overhead_vs_cell_t_D": med / (nfe * t_d), "overhead_goal": goal,
        "overhead_ok": overhead <= goal,
    }  # fmt: skip
    return row, run, np.asarray(sol.samples)


# --------------------------------------------------------------------------------------------- likelihood
def bench_likelihood(env):
    args = env.args
    dim, n = 64, args.ll_points
    mix = gm.targets.random_mixture(jax.random.key(args.seed), dim, k=8)
    x = mix.sample(jax.random.key(args.seed + 3), n)
    truth = np.asarray(mix.log_prob(x, SIGMA_MIN))
    out = {"dim": dim, "points": n, "rtol": RTOL, "atol": ATOL, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX}
    key = jax.random.key(args.seed + 4)
    ours, runs = {}, {}
    for name, trace in (("exact", gm.likelihood.ExactTrace()), ("hutchinson", gm.likelihood.Hutchinson(1))):
        kw = dict(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, trace=trace, rtol=RTOL, atol=ATOL)

        def call(k=key, kw=kw):
            return jax.block_until_ready(gm.log_prob(mix, x, k, **kw))

        lp, t_first = first_call(call)
        med, tmin, reps = timed(call, args.budget, 3, 20)
        stats = gm.likelihood.log_prob_result(mix, x, key, **kw)
        runs[name] = call
        ours[name] = {"median_s": med, "min_s": tmin, "compile_s": max(t_first - med, 0.0), "nfe": int(stats.nfe),
                      "mean_abs_err_vs_truth": float(np.mean(np.abs(np.asarray(lp) - truth)))}  # fmt: skip
        print(f"  log_prob {name}: {ours[name]}", file=sys.stderr, flush=True)
    out["genmodels"] = ours
    spread = {}
    for probes in (1, args.probes):
        kw = dict(
            sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, trace=gm.likelihood.Hutchinson(probes), rtol=RTOL, atol=ATOL
        )
        ests = np.stack(
            [np.asarray(gm.log_prob(mix, x, jax.random.key(100 + i), **kw)) for i in range(args.spread_keys)]
        )
        spread[str(probes)] = {"mean_std_nats": float(ests.std(axis=0, ddof=1).mean()),
                               "mean_abs_err_vs_truth": float(np.mean(np.abs(ests.mean(0) - truth)))}  # fmt: skip
    out["hutchinson_spread"] = {"keys": args.spread_keys, "probe_arg": "Hutchinson(num_probes)", "by_probes": spread}
    out["scipy_rk45"] = bench_scipy_ll(mix, x, truth, runs, args)
    if env.kd is not None:
        out["k_diffusion"] = bench_kdiff_ll(mix, x, truth, runs, env)
    return out


# -------------------------------------------------------------------------------------------------- main
def markdown(results):
    """The run as markdown tables (✗ marks a missed goal)."""
    mark = lambda ok: "" if ok else " ✗"  # noqa: E731
    lines = ["| denoiser | dim | batch | t_D ms | sampler | NFE | median s | samples/s | compile s | overhead "
             "| peer NFE | peer s | speedup | abs diff max / p99 |", "|" + "---|" * 14]  # fmt: skip
    for c in results["cells"]:
        head = f"| {c['denoiser']} | {c['dim']} | {c['batch']} | {1e3 * c['denoiser_call_s']:.3g} | "
        for r in c["samplers"]:
            if "error" in r:
                lines.append(head + f"{r['sampler']} | error: {r['error'][:80]} |" + " |" * 8)
                continue
            peer = "– | – | – | –"
            if "peer" in r:
                peer = (f"{r['peer_nfe']} | {r['peer_median_s']:.4g} | {r['speedup']:.2f}{mark(r['speedup_ok'])} | "
                        f"{r['max_abs_diff']:.1e} / {r['p99_abs_diff']:.1e}{mark(r['agree'])}")  # fmt: skip
            lines.append(
                head + f"{r['sampler']} | {r['nfe']} | {r['median_s']:.4g} | {r['samples_per_s']:.3g} | "
                f"{r['compile_s']:.2f} | {r['overhead']:.2f}{mark(r['overhead_ok'])} | {peer} |"
            )
    ll = results.get("likelihood", {})
    if "genmodels" in ll:
        lines += ["", f"log-likelihood, {ll['points']} points, {ll['dim']}-D mixture, rtol = atol = {ll['rtol']}:", "",
                  "| method | trace | NFE | seconds | genmodels speedup | mean abs err vs log p (nats) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for trace, r in ll["genmodels"].items():
            lines.append(
                f"| gm.log_prob | {trace} | {r['nfe']} | {r['median_s']:.4g} | – | {r['mean_abs_err_vs_truth']:.3f} |"
            )
        for trace, r in ll.get("scipy_rk45", {}).items():
            name = "scipy RK45, one jitted drift+div call" if trace.endswith("_fused") else "scipy RK45 (score_sde)"
            ok = "" if r["speedup_ok"] is None else mark(r["speedup_ok"])
            lines.append(f"| {name} | {trace.removesuffix('_fused')} | {r['nfe']} | {r['seconds']:.4g} | "
                         f"{r['speedup']:.2f}{ok} | {r['mean_abs_err_vs_truth']:.3f} |")  # fmt: skip
        if "k_diffusion" in ll:
            r = ll["k_diffusion"]
            lines.append(f"| k-diffusion log_likelihood | hutchinson (1 probe) | {r['nfe']} | {r['seconds']:.4g} | "
                         f"{r['speedup_vs_hutchinson']:.2f}{mark(r['speedup_ok'])} (vs exact: "
                         f"{r['speedup_vs_exact']:.2f}) | {r['mean_abs_err_vs_truth']:.3f} |")  # fmt: skip
        if "hutchinson_spread" in ll:
            sp = ll["hutchinson_spread"]
            lines += ["", f"Hutchinson spread over {sp['keys']} keys (std of the estimate per point, averaged):", ""]
            lines += [f"- {p} probe(s): {v['mean_std_nats']:.3f} nats" for p, v in sp["by_probes"].items()]
    return "\n".join(lines)


def make_env(args):
    """Peers and devices: torch with one thread per core (as XLA's CPU client), k-diffusion's sampling."""
    threads = len(os.sched_getaffinity(0))
    env = types.SimpleNamespace(args=args, threads=threads, torch=None, kd=None, device="cpu", sync=lambda: None)
    if args.peers:
        try:
            import torch

            torch.set_num_threads(threads)
            env.torch, env.kd = torch, load_kdiffusion_sampling()
            torch.backends.cuda.matmul.allow_tf32 = args.tf32
            gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
            env.device = args.torch_device if args.torch_device != "auto" else ("cuda" if gpu else "cpu")
            if env.device != "cpu":
                env.sync = torch.cuda.synchronize
        except ImportError as err:
            print(f"peers unavailable ({err}); install the bench extra", file=sys.stderr)
    env.to_torch = lambda a: env.torch.from_numpy(np.array(a)).to(env.device)
    return env


def summarise(results):
    rows = [(c, r) for c in results["cells"] for r in c["samplers"]]
    tag = lambda c, r: f"{c['denoiser']}/d{c['dim']}/B{c['batch']}/{r['sampler']}"  # noqa: E731
    out = {
        "errors": [f"{tag(c, r)}: {r['error']}" for c, r in rows if "error" in r],
        "overhead_misses": [f"{tag(c, r)}={r['overhead']:.2f}" for c, r in rows if not r.get("overhead_ok", True)],
        "speedup_misses": [f"{tag(c, r)}={r['speedup']:.2f}" for c, r in rows if not r.get("speedup_ok", True)],
        "disagreements": [
            f"{tag(c, r)}: p99 {r['p99_abs_diff']:.2e} > {r['agree_tol']:.1e}"
            for c, r in rows
            if not r.get("agree", True)
        ],
    }
    ll = results.get("likelihood", {})
    if "k_diffusion" in ll:
        out["ll_speedup_vs_k_diffusion_ok"] = ll["k_diffusion"]["speedup_ok"]
    if "scipy_rk45" in ll:
        out["ll_speedup_vs_scipy_ok"] = all(
            v["speedup_ok"] for v in ll["scipy_rk45"].values() if v["speedup_ok"] is not None
        )
    return out


def merge(paths):
    """Combine the JSON of several partial runs (e.g. cells run in parallel on disjoint cores)."""
    parts = [json.loads(pathlib.Path(p).read_text()) for p in paths]
    results = {"meta": [r["meta"] for r in parts], "cells": [c for r in parts for c in r["cells"]]}
    for r in parts:
        if "likelihood" in r:
            results["likelihood"] = r["likelihood"]
    results["summary"] = summarise(results)
    return results


def run(config: Config, *, out: pathlib.Path | None = None, markdown_path: pathlib.Path | None = None) -> dict:
    """Every cell of ``config`` and the likelihood part; the JSON goes to stdout and to ``out`` (rewritten after
    every cell), the markdown tables to stderr and to ``markdown_path``."""
    # float32 matmuls in full precision on both sides (JAX would use TF32 on recent GPUs by default)
    jax.config.update("jax_default_matmul_precision", "tensorfloat32" if config.tf32 else "highest")
    env = make_env(config)
    torch = env.torch
    meta = {
        "command": " ".join(["python", *sys.argv]), "config": dataclasses.asdict(config),
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "cpu": platform.processor() or platform.machine(), "cores": env.threads,
        "torch_threads": torch.get_num_threads() if torch else None, "torch_device": env.device, "jax": jax.__version__,
        "torch": getattr(torch, "__version__", None), "float": "float32", "tf32": config.tf32, "steps": config.steps,
        "budget_s": config.budget, "samplers_present": list(sampler_specs(config.steps)),
        "k_diffusion_loaded": env.kd is not None, "load_average_start": os.getloadavg(),
    }  # fmt: skip
    print(json.dumps(meta, default=str), file=sys.stderr, flush=True)
    results = {"meta": meta, "cells": []}

    def save():
        results["meta"]["load_average_end"] = os.getloadavg()
        results["summary"] = summarise(results)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))

    cells = (
        [(k, d, b) for k in config.denoisers for d in config.dims for b in config.batches] if config.sampling else []
    )
    for kind, dim, batch in cells:
        results["cells"].append(bench_cell(kind, dim, batch, env))
        save()  # partial results survive an interrupted run
    if config.likelihood:
        try:
            results["likelihood"] = bench_likelihood(env)
        except Exception as err:
            results["likelihood"] = {"error": f"{type(err).__name__}: {err}"[:500]}
    save()
    write_outputs(results, None, markdown_path)
    return results


def write_outputs(results: dict, out: pathlib.Path | None, markdown_path: pathlib.Path | None) -> None:
    """Print the JSON (stdout) and the markdown (stderr); write them to ``out`` / ``markdown_path`` if given."""
    print(json.dumps(results, indent=1))
    print(markdown(results), file=sys.stderr)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown(results) + "\n")
