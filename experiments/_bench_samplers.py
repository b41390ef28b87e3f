"""The work of ``experiments/bench_samplers.py`` (imports JAX): sampler and likelihood timings against
k-diffusion, torchdiffeq and score_sde's host loop."""

from __future__ import annotations

import dataclasses
import functools
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
from experiments import _bench_likelihood, catalog
from experiments._bench_peers import (
    ATOL,
    RTOL,
    SIGMA_MAX,
    SIGMA_MIN,
    bench_peer,
    blocking_time,
    load_kdiffusion_sampling,
    peer_for,
    torch_twin,
    use_clock,
)
from experiments.configs.bench_samplers import SAMPLERS, Config

S = gm.schedules
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
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
    times = [blocking_time(fn)]
    for _ in range(int(np.clip(budget / max(times[0], 1e-9), min_reps, max_reps)) - 1):
        times.append(blocking_time(fn))
    return float(np.median(times)), float(np.min(times)), len(times)


def first_call(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- samplers
def _special(steps):
    """Samplers whose benchmark schedule is not ``karras(steps)`` (class name -> constructor)."""
    return {
        "AnnealedLangevin": lambda: gm.samplers.AnnealedLangevin(S.log_uniform(10, 0.01, 50.0), steps_per_level=3),
        "ODE": lambda: gm.samplers.ODE(sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN, rtol=RTOL, atol=ATOL),
    }


def discover_samplers(steps, wanted=()):
    """class name -> (constructor, kind) for every concrete continuous sampler exported by ``gm.samplers``
    (so samplers added later appear without a change here): step samplers on ``karras(steps)`` with their
    default options ("fixed"), adaptive ones ("adaptive") with the benchmark's tolerances. ``wanted``: class
    names or names of ``experiments/catalog.py`` to keep (empty: all)."""
    keep = {catalog.SAMPLERS[n].cls if n in catalog.SAMPLERS else n for n in wanted}
    karras, special = S.karras(steps), _special(steps)
    specs = {}
    for name in dir(gm.samplers):
        cls = getattr(gm.samplers, name)
        if not (isinstance(cls, type) and issubclass(cls, gm.samplers.AbstractDenoiserSampler)):
            continue
        if inspect.isabstract(cls) or name.startswith("Abstract") or (keep and name not in keep):
            continue
        step = issubclass(cls, gm.samplers.AbstractStepSampler)
        make = special.get(name, functools.partial(cls, karras) if step else cls)
        specs[name] = (make, "fixed" if step else "adaptive")
    old = [catalog.SAMPLERS[n].cls for n in SAMPLERS]  # the long-standing ones first, in the tables' order
    return dict(sorted(specs.items(), key=lambda kv: (old.index(kv[0]) if kv[0] in old else len(old), kv[0])))


_DRAWS: dict[str, float] = {}  # class name -> draws per model call (the same in every cell)


def count_draws(sampler, model, dim, nfe):
    """Standard normals a run draws per model evaluation, in units of the state's size (B x d): counted by
    running the program eagerly (``jax.disable_jit``, so only the branches taken run) on 2 rows."""
    drawn, normal = [0], jax.random.normal

    def counting(key, shape=(), dtype=float, *args, **kw):
        drawn[0] += math.prod(shape)
        return normal(key, shape, dtype, *args, **kw)

    noise = jnp.zeros((2, dim))
    jax.random.normal = counting
    try:
        with jax.disable_jit():
            gm.solve(model, sampler, jax.random.key(0), (2, dim), noise=noise)
    finally:
        jax.random.normal = normal
    return drawn[0] / (2 * dim) / nfe


def bench_cell(kind, dim, batch, env):
    """One (denoiser, dim, batch) cell: the denoiser alone and B x d normal draws alone, then every sampler
    (and its peer)."""
    args = env.args
    key = jax.random.key(args.seed)
    model = make_mlp(key, dim) if kind == "mlp" else gm.targets.random_mixture(key, dim, k=8)
    noise = jax.random.normal(jax.random.key(args.seed + 1), (batch, dim))
    den = jax.jit(lambda m, x, s: m(x, s))
    draws = jax.jit(lambda k, x: jax.lax.fori_loop(0, 16, lambda i, x: 0.5 * x + jax.random.normal(jax.random.fold_in(k, i), x.shape), x))  # fmt: skip
    sig = jnp.asarray(1.0, noise.dtype)
    den_call = lambda: den(model, noise, sig).block_until_ready()  # noqa: E731
    draw_call = lambda: draws(key, noise).block_until_ready()  # noqa: E731  (16 draws as a step loop draws them)
    t_d, t_d_min, _ = timed(den_call, args.budget, 10, 200)
    cell = {"denoiser": kind, "dim": dim, "batch": batch, "denoiser_call_s": t_d, "denoiser_call_min_s": t_d_min,
            "normal_draw_s": timed(draw_call, args.budget / 2, 10, 200)[0] / 16, "load_start": os.getloadavg()[0]}  # fmt: skip
    if env.torch is not None:
        torch, tmodel = env.torch, torch_twin(kind, model, env.device)
        tnoise, tsig = env.to_torch(noise), torch.full((batch,), 1.0, device=env.device)

        def tcall():
            with torch.no_grad():
                tmodel(tnoise, tsig)
            env.sync()

        cell["torch_denoiser_call_s"] = timed(tcall, args.budget, 10, 200)[0]
    rows = []
    for name, (make, skind) in discover_samplers(args.steps, args.samplers).items():
        try:
            sampler = make()
            row, run, samples = bench_sampler(name, sampler, skind, model, noise, den_call, cell["normal_draw_s"], args)
            peer = peer_for(name, env)
            if peer and env.torch is not None:
                row.update(
                    bench_peer(peer, sampler, model, kind, noise, samples, run, env, jax.random.key(args.seed + 2))
                )
        except Exception as err:  # keep the rest of the run; the failure is reported in the JSON
            row = {"sampler": name, "kind": skind, "error": f"{type(err).__name__}: {err}"[:500]}
        rows.append(row)
        print(f"  {kind} d={dim} B={batch} {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    cell["samplers"] = rows
    cell["load_end"] = os.getloadavg()[0]
    return cell


def bench_sampler(name, sampler, skind, model, noise, den_call, t_normal, args):
    """Times of ``gm.sample``; each repeat is paired with a burst of denoiser calls timed right after it, so
    that the overhead ratio holds on a machine whose load changes.

    ``floor`` = 1 + draws x t_normal / t_D: what the run costs per model call beyond the model when its
    only extra work is the standard normals it must draw (``draws`` per model call, in units of B x d;
    t_normal the cost of one B x d draw inside a compiled loop)."""
    shape, skey = noise.shape, jax.random.key(args.seed + 2)
    sol, t_first = first_call(lambda: jax.block_until_ready(gm.solve(model, sampler, skey, shape, noise=noise)))
    nfe = int(np.max(np.asarray(sol.nfe)))  # per-sample adaptive solvers report one count per row: the largest
    draws = _DRAWS.get(name) if skind == "fixed" else None
    if skind == "fixed" and name not in _DRAWS:
        draws = _DRAWS[name] = count_draws(sampler, model, shape[1], nfe)
    run = lambda: gm.sample(model, sampler, skey, shape, noise=noise).block_until_ready()  # noqa: E731
    times, ratios, floors = [], [], []
    while len(times) < 3 or (sum(times) < args.budget and len(times) < 30):  # run was warmed by the first call
        times.append(blocking_time(run, settle=True))
        t_d = float(np.median([blocking_time(den_call, settle=i == 0) for i in range(min(nfe, 5))]))
        ratios.append(times[-1] / (nfe * t_d))
        floors.append(1.0 + (draws or 0.0) * t_normal / t_d)
    med = float(np.median(times))
    goal = GOAL_OVERHEAD_FIXED if skind == "fixed" else GOAL_OVERHEAD_ODE
    overhead = float(np.median(ratios))
    floor = float(np.median(floors))
    row = {
        "sampler": name, "kind": skind, "deterministic": sampler.deterministic, "nfe": nfe, "median_s": med,
        "min_s": float(np.min(times)), "reps": len(times), "samples_per_s": shape[0] / med,
        "compile_s": max(t_first - med, 0.0), "overhead": overhead, "overhead_goal": goal,
        "overhead_ok": overhead <= goal, "draws_per_nfe": draws, "noise_floor": floor,
        "overhead_over_floor": overhead / floor, "bound": _bound(overhead, floor, goal),
    }  # fmt: skip
    return row, run, np.asarray(sol.samples)


def _bound(overhead, floor, goal):
    """What the overhead is at: "network" (within the goal), "noise draws" (above the goal, but within it
    over the floor of the normals the sampler must draw), or "sampler" (waste left in the sampler)."""
    if overhead <= goal:
        return "network"
    return "noise draws" if overhead <= goal * floor else "sampler"


# -------------------------------------------------------------------------------------------------- main
def load_note(results):
    """One line on the machine's load while the tables were taken (a table taken at a load above the core
    count measures the load: torch's threads starve far more than one XLA program)."""
    meta = results["meta"] if isinstance(results["meta"], dict) else results["meta"][0]
    loads = [v for c in results["cells"] for v in (c.get("load_start"), c.get("load_end")) if v is not None]
    loads += [meta.get("load_average_start", [0])[0], meta.get("load_average_end", [0])[0]]
    cores, peak = meta.get("os_cpu_count") or meta["cores"], max(loads)
    if meta.get("clock") == "cpu":
        state = "CPU seconds of each side with one thread: not inflated by the load"
    else:
        state = "quiet" if peak < cores else "**LOADED: ratios not reliable**"
    return (f"1-minute load {min(loads):.2f}-{peak:.2f} on {cores} cores ({state}); XLA threads "
            f"{meta.get('xla_threads')}, torch threads {meta.get('torch_threads')} (interop "
            f"{meta.get('torch_interop_threads')}); {meta.get('date', '')}")  # fmt: skip


def markdown(results):
    """The run as markdown tables (✗ marks a missed goal; bound: see ``_bound``)."""
    mark = lambda ok: "" if ok else " ✗"  # noqa: E731
    lines = [load_note(results), "",
             "| denoiser | dim | batch | t_D ms | normal ms | sampler | NFE | median s | samples/s | compile s "
             "| overhead | floor | bound | peer NFE | peer s | speedup | agreement: abs diff max / p99 |",
             "|" + "---|" * 17]  # fmt: skip
    for c in results["cells"]:
        head = (f"| {c['denoiser']} | {c['dim']} | {c['batch']} | {1e3 * c['denoiser_call_s']:.3g} | "
                f"{1e3 * c.get('normal_draw_s', float('nan')):.3g} | ")  # fmt: skip
        for r in c["samplers"]:
            if "error" in r:
                lines.append(head + f"{r['sampler']} | error: {r['error'][:80]} |" + " |" * 10)
                continue
            peer = "– | – | – | –"
            if "peer" in r:
                agree = "–"
                if "p99_abs_diff" in r:
                    agree = f"{r['max_abs_diff']:.1e} / {r['p99_abs_diff']:.1e}{mark(r['agree'])} ({r['agreement']})"
                if "replayed_noise" in r:
                    rn = r["replayed_noise"]
                    agree += f"; replayed noise {rn['max_abs_diff']:.1e} / {rn['p99_abs_diff']:.1e}{mark(rn['agree'])}"
                peer = f"{r['peer_nfe']} | {r['peer_median_s']:.4g} | {r['speedup']:.2f} | {agree}"
            lines.append(
                head + f"{r['sampler']} | {r['nfe']} | {r['median_s']:.4g} | {r['samples_per_s']:.3g} | "
                f"{r['compile_s']:.2f} | {r['overhead']:.2f}{mark(r['overhead_ok'])} | {r['noise_floor']:.2f} | "
                f"{r['bound']} | {peer} |"
            )
    ll = results.get("likelihood", {})
    if "genmodels" in ll:
        lines += ["", _bench_likelihood.markdown(ll)]
    return "\n".join(lines)


def make_env(args):
    """Peers and devices: torch with one thread per core (as XLA's CPU client), k-diffusion's sampling."""
    threads = len(os.sched_getaffinity(0)) if args.clock == "wall" else 1  # cpu clock: one thread a side
    use_clock(args.clock)
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
        "overhead_bounds": {
            b: sum(r.get("bound") == b for _, r in rows) for b in ("network", "noise draws", "sampler")
        },
        "over_floor_misses": [
            f"{tag(c, r)}={r['overhead_over_floor']:.2f}" for c, r in rows if r.get("bound") == "sampler"
        ],
        "disagreements": [
            f"{tag(c, r)}: p99 {r['p99_abs_diff']:.2e} > {r['agree_tol']:.1e}"
            for c, r in rows
            if not r.get("agree", True)
        ],
        "agreements": sorted({f"{r['sampler']} ~ {r['peer']} ({r['agreement']})" for _, r in rows if r.get("agree")}),
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
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "cpu": platform.processor() or platform.machine(), "cores": env.threads, "os_cpu_count": os.cpu_count(),
        "clock": config.clock, "xla_threads": env.threads, "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "thread_env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
        "torch_threads": torch.get_num_threads() if torch else None,
        "torch_interop_threads": torch.get_num_interop_threads() if torch else None,
        "torch_device": env.device, "jax": jax.__version__, "torch": getattr(torch, "__version__", None),
        "float": "float32", "tf32": config.tf32, "steps": config.steps, "budget_s": config.budget,
        "samplers_present": list(discover_samplers(config.steps)), "k_diffusion_loaded": env.kd is not None,
        "load_average_start": os.getloadavg(),
    }  # fmt: skip
    print(json.dumps(meta, default=str), file=sys.stderr, flush=True)
    results = {"meta": meta, "cells": []}

    def save():
        results["meta"]["load_average_end"] = os.getloadavg()
        results["summary"] = summarise(results)
        results["meta"]["loaded"] = loaded(results)
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
            results["likelihood"] = _bench_likelihood.bench_likelihood(env)
        except Exception as err:
            results["likelihood"] = {"error": f"{type(err).__name__}: {err}"[:500]}
    save()
    if config.refuse_loaded and results["meta"]["loaded"]:
        print(f"not writing the tables: {load_note(results)}", file=sys.stderr)
        markdown_path = None
    write_outputs(results, None, markdown_path)
    return results


def loaded(results) -> bool:
    """Whether the 1-minute load exceeded the core count at any point of the run."""
    return "LOADED" in load_note(results)


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
