"""Sampler and likelihood speed of genmodels against k-diffusion, torchdiffeq and score_sde's host loop.

Cells: denoiser (``mlp``: an EDM-preconditioned 4 x 256 SiLU MLP with random weights; ``mixture``: the
exact denoiser of ``gm.targets.random_mixture``, 8 components) x dimension (2, 64) x batch (1,024,
16,384). The torch twins hold the same parameters. Per sampler and cell:

* ``median_s`` -- median wall seconds of ``gm.sample(..., noise=eps)`` after a warm-up (block_until_ready);
* ``samples_per_s`` = batch / median_s; ``compile_s`` = first call - median (trace + compile);
* ``nfe`` -- from ``gm.solve(...).nfe``;
* ``overhead`` = median_s / (nfe x t_D), t_D the median seconds of the denoiser alone under ``jax.jit``.

Peers, same denoiser, same noise, same schedule (so the same NFE): k-diffusion's ``sample_euler``,
``sample_heun``, ``sample_dpmpp_2m``, and torchdiffeq's ``dopri5`` against ``gm.samplers.ODE`` (same ODE in
the same variable v = -log sigma, same rtol / atol; both adaptive, so NFE may differ and is reported).
``speedup`` = peer seconds / genmodels seconds. Outputs are compared per sample (largest coordinate
difference); a handful of samples near mixture-component boundaries amplify float32 rounding (each library
differs that much from a float64 run), so ``agree`` tests the 99th percentile against 1e-4 x scale (1e-2
for the adaptive ODE) and the maximum is reported beside it. torch runs with one thread per core, as XLA's
CPU client; on a GPU both sides use full float32 matmuls (no TF32) unless ``--tf32``. k-diffusion's
package ``__init__`` imports torchvision, so only its ``sampling.py`` is loaded (its one helper from
``utils``, ``append_dims``, is stubbed here).

Likelihood: ``gm.log_prob`` on 256 exact samples of a 64-D mixture (exact and Hutchinson trace, rtol =
atol = 1e-5) against k-diffusion's ``log_likelihood`` (torchdiffeq dopri5, one Rademacher probe) and
score_sde's method (scipy ``solve_ivp`` RK45 on the host calling a jitted drift + divergence at every
evaluation); the spread of the Hutchinson estimate over keys for 1 and several probes.

    python experiments/bench_samplers.py --out runs/bench/cpu.json --markdown runs/bench/cpu.md  # ~20 min, 2 idle cores
    python experiments/bench_samplers.py --quick                                 # small smoke run
    python experiments/bench_samplers.py --denoisers mixture --dims 64 --batches 16384 --samplers Euler,Heun

JSON goes to stdout and to ``--out`` (rewritten after every cell); markdown tables go to stderr and to
``--markdown``.
"""

from __future__ import annotations

import argparse
import inspect
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

if __package__ in (None, ""):  # run as a script: make ``experiments`` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from experiments._bench_peers import (  # noqa: E402
    ATOL, RTOL, SIGMA_MAX, SIGMA_MIN, bench_kdiff_ll, bench_peer,
    bench_scipy_ll, blocking_time, load_kdiffusion_sampling, torch_twin,
)

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
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = jax.nn.silu(h @ w + b)
        out = h @ self.weights[-1] + self.biases[-1]
        return (0.25 / total) * x + (0.5 * sigma * c_in) * out


def make_mlp(key, dim, width=256, depth=4):
    sizes = [dim + 1] + [width] * depth + [dim]
    keys = jax.random.split(key, len(sizes) - 1)
    ws = tuple(jax.random.normal(k, (a, b)) / math.sqrt(a) for k, a, b in zip(keys, sizes[:-1], sizes[1:]))
    bs = tuple(0.1 * jax.random.normal(jax.random.fold_in(k, 1), (b,)) for k, b in zip(keys, sizes[1:]))
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
    """name -> (constructor, kind, k-diffusion function or None). Missing samplers are skipped."""
    karras = S.karras(steps)
    specs = {
        "Euler": (lambda: gm.samplers.Euler(karras), "fixed", "sample_euler"),
        "Heun": (lambda: gm.samplers.Heun(karras), "fixed", "sample_heun"),
        "DPMSolverPP2M": (lambda: gm.samplers.DPMSolverPP2M(karras), "fixed", "sample_dpmpp_2m"),
        "DPMSolverPP3MSDE": (lambda: gm.samplers.DPMSolverPP3MSDE(karras), "fixed", None),
        "DDIM": (lambda: gm.samplers.DDIM(karras), "fixed", None),
        "EulerAncestral": (lambda: gm.samplers.EulerAncestral(karras), "fixed", None),
        "EulerMaruyama": (lambda: gm.samplers.EulerMaruyama(karras), "fixed", None),
        "PredictorCorrector": (lambda: gm.samplers.PredictorCorrector(karras), "fixed", None),
        "AnnealedLangevin": (
            lambda: gm.samplers.AnnealedLangevin(S.log_uniform(10, 0.01, 50.0), steps_per_level=3),
            "fixed",
            None,
        ),
        "ODE": (
            lambda: gm.samplers.ODE(sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN, rtol=RTOL, atol=ATOL),
            "adaptive",
            "torchdiffeq",
        ),
    }
    return {k: v for k, v in specs.items() if hasattr(gm.samplers, k)}


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
    for name, (make, skind, peer) in sampler_specs(args.steps).items():
        if args.samplers and name not in args.samplers:
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
    if not hasattr(gm, "log_prob"):
        return {"skipped": "gm.log_prob does not exist yet"}
    dim, n = 64, args.ll_points
    mix = gm.targets.random_mixture(jax.random.key(args.seed), dim, k=8)
    x = mix.sample(jax.random.key(args.seed + 3), n)
    truth = np.asarray(mix.log_prob(x, SIGMA_MIN))
    params = inspect.signature(gm.log_prob).parameters
    probe_arg = next((p for p in ("num_probes", "probes", "n_probes") if p in params), None)
    out = {"dim": dim, "points": n, "rtol": RTOL, "atol": ATOL, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX}
    key = jax.random.key(args.seed + 4)
    ours, runs = {}, {}
    for trace in ("exact", "hutchinson"):
        kw = dict(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, trace=trace, rtol=RTOL, atol=ATOL)

        def call(k=key, kw=kw):
            return jax.block_until_ready(gm.log_prob(mix, x, k, **kw))

        lp, t_first = first_call(call)
        med, tmin, reps = timed(call, args.budget, 3, 20)
        _, stats = gm.log_prob(mix, x, key, return_stats=True, **kw)
        runs[trace] = call
        ours[trace] = {"median_s": med, "min_s": tmin, "compile_s": max(t_first - med, 0.0), "nfe": int(stats.nfe),
                       "mean_abs_err_vs_truth": float(np.mean(np.abs(np.asarray(lp) - truth)))}  # fmt: skip
        print(f"  log_prob {trace}: {ours[trace]}", file=sys.stderr, flush=True)
    out["genmodels"] = ours
    if probe_arg is not None:
        spread = {}
        for probes in (1, args.probes):
            kw = dict(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, trace="hutchinson", rtol=RTOL, atol=ATOL)
            kw[probe_arg] = probes
            ests = [np.asarray(gm.log_prob(mix, x, jax.random.key(100 + i), **kw)) for i in range(args.spread_keys)]
            ests = np.stack(ests)
            spread[str(probes)] = {"mean_std_nats": float(ests.std(axis=0, ddof=1).mean()),
                                   "mean_abs_err_vs_truth": float(np.mean(np.abs(ests.mean(0) - truth)))}  # fmt: skip
        out["hutchinson_spread"] = {"keys": args.spread_keys, "probe_arg": probe_arg, "by_probes": spread}
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
            lines.append(f"| gm.log_prob | {trace} | {r['nfe']} | {r['median_s']:.4g} | – | {r['mean_abs_err_vs_truth']:.3f} |")
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    csv = lambda cast: lambda s: [cast(v) for v in s.split(",") if v]  # noqa: E731
    p.add_argument("--out", type=pathlib.Path, help="also write the JSON here (a file; parents created)")
    p.add_argument("--markdown", type=pathlib.Path, help="also write the markdown tables here")
    p.add_argument("--quick", action="store_true", help="small cells, short budgets (smoke test)")
    p.add_argument("--denoisers", type=csv(str), default=["mlp", "mixture"])
    p.add_argument("--dims", type=csv(int), default=[2, 64])
    p.add_argument("--batches", type=csv(int), default=[1024, 16384])
    p.add_argument("--samplers", type=csv(str), default=None, help="comma-separated names (default: all present)")
    p.add_argument("--steps", type=int, default=18, help="schedule steps (karras) of the fixed-step samplers")
    p.add_argument("--budget", type=float, default=1.0, help="seconds of repeats per timing (median of >= 3)")
    p.add_argument("--no-peers", action="store_true", help="skip k-diffusion / torchdiffeq")
    p.add_argument("--no-torchdiffeq", dest="torchdiffeq", action="store_false")
    p.add_argument("--no-samplers", action="store_true", help="likelihood part only")
    p.add_argument("--no-likelihood", action="store_true")
    p.add_argument("--ll-points", type=int, default=256)
    p.add_argument("--probes", type=int, default=8, help="probes for the Hutchinson spread comparison")
    p.add_argument("--spread-keys", type=int, default=8)
    p.add_argument("--torch-device", default="auto", help="cpu, cuda or auto (cuda when JAX runs on a GPU)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on GPU (both JAX and torch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--merge", nargs="+", help="combine these JSON results (with --out / --markdown) and exit")
    args = p.parse_args(argv)
    if args.quick:
        args.budget, args.batches, args.spread_keys = 0.2, [b for b in args.batches if b <= 1024] or [1024], 3
    return args


def make_env(args):
    """Peers and devices: torch with one thread per core (as XLA's CPU client), k-diffusion's sampling."""
    threads = len(os.sched_getaffinity(0))
    env = types.SimpleNamespace(args=args, threads=threads, torch=None, kd=None, device="cpu", sync=lambda: None)
    if not args.no_peers:
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
        "disagreements": [f"{tag(c, r)}: p99 {r['p99_abs_diff']:.2e} > {r['agree_tol']:.1e}" for c, r in rows
                          if not r.get("agree", True)],
    }
    ll = results.get("likelihood", {})
    if "k_diffusion" in ll:
        out["ll_speedup_vs_k_diffusion_ok"] = ll["k_diffusion"]["speedup_ok"]
    if "scipy_rk45" in ll:
        out["ll_speedup_vs_scipy_ok"] = all(v["speedup_ok"] for v in ll["scipy_rk45"].values() if v["speedup_ok"] is not None)
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


def main(argv=None):
    args = parse_args(argv)
    if args.merge:
        results = merge(args.merge)
        print(json.dumps(results, indent=1))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
        if args.markdown:
            args.markdown.write_text(markdown(results) + "\n")
        return
    # float32 matmuls in full precision on both sides (JAX would use TF32 on recent GPUs by default)
    jax.config.update("jax_default_matmul_precision", "tensorfloat32" if args.tf32 else "highest")
    env = make_env(args)
    torch = env.torch
    meta = {
        "command": " ".join(["python", *sys.argv]), "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()], "cpu": platform.processor() or platform.machine(),
        "cores": env.threads, "torch_threads": torch.get_num_threads() if torch else None,
        "torch_device": env.device, "jax": jax.__version__, "torch": getattr(torch, "__version__", None),
        "float": "float32", "tf32": args.tf32, "steps": args.steps, "budget_s": args.budget,
        "samplers_present": list(sampler_specs(args.steps)), "k_diffusion_loaded": env.kd is not None,
        "load_average_start": os.getloadavg(),
    }  # fmt: skip
    print(json.dumps(meta), file=sys.stderr, flush=True)
    results = {"meta": meta, "cells": []}

    def save():
        results["meta"]["load_average_end"] = os.getloadavg()
        results["summary"] = summarise(results)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))

    if not args.no_samplers:
        for kind in args.denoisers:
            for dim in args.dims:
                for batch in args.batches:
                    results["cells"].append(bench_cell(kind, dim, batch, env))
                    save()  # partial results survive an interrupted run
    if not args.no_likelihood:
        try:
            results["likelihood"] = bench_likelihood(env)
        except Exception as err:
            results["likelihood"] = {"error": f"{type(err).__name__}: {err}"[:500]}
    save()
    print(json.dumps(results, indent=1))
    print(markdown(results), file=sys.stderr)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results) + "\n")


if __name__ == "__main__":
    main()
