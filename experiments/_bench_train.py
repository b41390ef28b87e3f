"""The work of ``experiments/bench_train.py``: the orchestrator and, run as ``python -m
experiments._bench_train JOB`` by it, one worker process per (batch size, XLA flag set), which imports JAX
after the flags are set in its environment."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from experiments.configs.bench_train import FLAG_SETS, Config

REPO = Path(__file__).resolve().parents[1]
WIDTH, DEPTH, LR = 256, 4, 1e-3
RADIUS, STD = 1.4, 0.14


# ------------------------------------------------------------------------------------------------ workers
def jax_bench(batch: int):
    """Returns ``make(spc, donate) -> burst(seconds) -> steps/s`` using gm.train's compiled step."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    import genmodels as gm

    class MLP(nnx.Module):
        def __init__(self, rngs):
            dims = [3] + [WIDTH] * DEPTH
            self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:], strict=False)])
            self.out = nnx.Linear(WIDTH, 2, rngs=rngs)

        def __call__(self, x, t):
            h = jnp.concatenate([x, t[:, None]], axis=-1)
            for layer in self.hidden:
                h = nnx.silu(layer(h))
            return self.out(h)

    def cfm_loss(model, x1, key):
        k0, kt = jax.random.split(key)
        x0 = jax.random.normal(k0, x1.shape)
        t = jax.random.uniform(kt, (x1.shape[0],))
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        return jnp.mean((model(xt, t) - (x1 - x0)) ** 2)

    data = gm.data.target_dataset(gm.targets.eight_gaussians(RADIUS, STD), batch)
    arrays, static = eqx.partition(data, eqx.is_array)
    optimizer = gm.train.adamw(LR, clip=None)

    def make(spc: int, donate: bool):
        # exactly what gm.train.fit builds and dispatches (fit adds logging and checkpoints around it)
        graphdef, params, rest = nnx.split(MLP(nnx.Rngs(0)), nnx.Param, ...)
        key = jax.random.key(0)
        holder = {"state": gm.train.TrainState(params, rest, None, optimizer.init(params), jnp.int32(0),
                                               jnp.int32(-1), jax.random.key_data(key))}  # fmt: skip
        call = gm.train.make_train_call(graphdef, gm.train.scalar_loss(cfm_loss), static, optimizer, None, steps_per_call=spc,
                                        donate=donate, key_impl=jax.random.key_impl(key))  # fmt: skip
        n_arg = np.int32(spc)

        def burst(seconds: float) -> tuple[float, float]:
            state, pending, n = holder["state"], [], 0
            t0 = time.perf_counter()
            while True:
                state, out = call(state, arrays, n_arg)
                n += spc
                pending.append(out["loss"])
                if len(pending) > 1:  # like fit: read the previous call's losses while this one runs
                    last = np.asarray(pending.pop(0))
                if time.perf_counter() - t0 > seconds:
                    break
            last = np.asarray(pending.pop())
            rate = n / (time.perf_counter() - t0)
            holder["state"] = state
            return rate, float(last[-1])

        burst(0.0)  # compile
        return burst

    return make


def torch_bench(batch: int):
    import torch
    from torch import nn

    def make(lib: str, threads: int):
        torch.manual_seed(0)
        layers, d = [], 3
        for _ in range(DEPTH):
            layers += [nn.Linear(d, WIDTH), nn.SiLU()]
            d = WIDTH
        model = nn.Sequential(*layers, nn.Linear(WIDTH, 2))
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        angles = torch.arange(8) * (2 * torch.pi / 8)
        centres = RADIUS * torch.stack([angles.cos(), angles.sin()], dim=-1)
        if lib == "torchcfm":
            from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

            fm = ConditionalFlowMatcher(sigma=0.0)
            sample = fm.sample_location_and_conditional_flow  # (x0, x1) -> t, x_t, u_t
        else:
            from flow_matching.path import AffineProbPath
            from flow_matching.path.scheduler import CondOTScheduler

            path = AffineProbPath(scheduler=CondOTScheduler())

            def sample(x0, x1):
                s = path.sample(x_0=x0, x_1=x1, t=torch.rand(x0.shape[0]))
                return s.t, s.x_t, s.dx_t

        def step():
            x1 = centres[torch.randint(0, 8, (batch,))] + STD * torch.randn(batch, 2)
            t, xt, ut = sample(torch.randn(batch, 2), x1)
            loss = ((model(torch.cat([xt, t[:, None]], dim=-1)) - ut) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        def burst(seconds: float) -> tuple[float, float]:
            torch.set_num_threads(threads)
            n, t0 = 0, time.perf_counter()
            while True:
                loss = step()
                n += 1
                if time.perf_counter() - t0 > seconds:
                    break
            return n / (time.perf_counter() - t0), float(loss)

        burst(0.2)  # warm-up
        return burst

    return make, torch.__version__


def worker(job: dict) -> dict:
    """One process = one XLA flag set and batch size; JAX and torch configurations measured in alternating
    bursts, so that load from other processes hits all of them alike."""
    benches = {}
    make_jax = jax_bench(job["batch"])
    for spc, donate in job["jax"]:
        benches[f"gm.train spc={spc} donate={int(donate)} xla={job['flags']}"] = make_jax(spc, donate)
    torch_version = None
    if job["peers"]:
        make_torch, torch_version = torch_bench(job["batch"])
        for lib, threads in job["peers"]:
            benches[f"{lib} threads={threads}"] = make_torch(lib, threads)
    rng = random.Random(job["batch"])
    samples = {k: [] for k in benches}
    for _ in range(job["reps"]):
        order = list(benches)
        rng.shuffle(order)
        for k in order:
            samples[k].append(benches[k](job["seconds"])[0])
    return {"samples": samples, "torch": torch_version}


# ------------------------------------------------------------------------------------------- orchestrator
def run(config: Config, out: Path) -> dict:
    """Every (batch size, flag set) in its own worker process; writes ``out/results.json``, prints tables."""
    status = peer_status(config.peers)
    peers = [lib for lib in config.peers if status[lib].startswith("ok")]
    t0, runs = time.time(), []
    for b in config.batch_sizes:
        for flags in config.flag_sets:
            runs.append(run_worker(config, b, flags, peers))
    result = summarise(runs, config.batch_sizes)
    import jax  # versions only

    result.update({
        "config": dataclasses.asdict(config),
        "machine": {"cpu_count": os.cpu_count(), "cpu": _cpu_model(), "platform": platform.platform(),
                    "python": platform.python_version(), "jax": jax.__version__},
        "peers": status, "runs": runs, "wall_time": time.time() - t0,
    })  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print(markdown(result, config.batch_sizes))
    return result


def run_worker(config: Config, batch: int, flags: str, peers: list[str]) -> dict:
    """One worker process: every JAX configuration and peer at ``batch`` under the XLA flag set ``flags``."""
    # at large batches a step takes ~0.1 s and one call of many steps would outlast a burst
    spcs = [k for k in config.spc if batch <= 1024 or k <= 10]
    jax_cfgs = [(k, True) for k in spcs]
    if flags == "default":
        jax_cfgs += [(1, False), (max(spcs), False)]  # donation off: the plain jitted step (spc=1)
    job = {"batch": batch, "flags": flags, "jax": jax_cfgs, "reps": config.reps, "seconds": config.seconds,
           "peers": [(lib, th) for lib in peers for th in config.torch_threads]}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + FLAG_SETS[flags]).strip()}  # fmt: skip
    load0 = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-m", "experiments._bench_train", json.dumps(job)], capture_output=True,
                          text=True, env=env, timeout=3600, cwd=REPO)  # fmt: skip
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        print(f"B={batch} xla={flags}: error {err}", flush=True)
        return {**job, "error": err}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for k, v in res["samples"].items():
        print(f"B={batch} | {k}: median {statistics.median(v):.1f} steps/s  {[round(x, 1) for x in v]}", flush=True)
    return {**job, **res, "loadavg": [load0, os.getloadavg()[0]]}


def peer_status(peers) -> dict:
    status = {}
    for lib in peers:
        mod = "torchcfm.conditional_flow_matching" if lib == "torchcfm" else "flow_matching.path"
        proc = subprocess.run([sys.executable, "-c", f"import torch, {mod}; print(torch.__version__)"],
                              capture_output=True, text=True)  # fmt: skip
        status[lib] = "ok (torch " + proc.stdout.strip() + ")" if proc.returncode == 0 else (
            "unavailable: " + (proc.stderr.strip().splitlines() or ["?"])[-1])  # fmt: skip
    return status


def summarise(runs, batch_sizes) -> dict:
    """Medians per configuration, and speed-ups paired within each process: the median over bursts of
    (gm.train burst rate) / (median rate of the best peer configuration in that same process)."""
    table, pool, speedups = [], {}, {}
    for run in runs:
        if "samples" not in run:
            continue
        peer = {k: statistics.median(v) for k, v in run["samples"].items() if not k.startswith("gm.train")}
        best_peer = max(peer, key=peer.get) if peer else None
        for k, v in run["samples"].items():
            if not k.startswith("gm.train"):
                pool.setdefault((run["batch"], k), []).extend(v)
                continue
            row = {"batch": run["batch"], "config": k, "median": statistics.median(v), "samples": v,
                   "loadavg": run.get("loadavg")}  # fmt: skip
            if best_peer:
                row.update(best_peer=best_peer, vs_best_peer=statistics.median(x / peer[best_peer] for x in v))
            table.append(row)
    for (b, k), v in pool.items():  # peers were measured in every process: all their bursts pooled
        table.append({"batch": b, "config": k, "median": statistics.median(v), "samples": v})
    for b in batch_sizes:
        rows = [r for r in table if r["batch"] == b and "vs_best_peer" in r]
        if rows:
            best = max(rows, key=lambda r: r["vs_best_peer"])
            plain = next((r for r in rows if "spc=1 donate=0 xla=default" in r["config"]), None)
            speedups[str(b)] = {"best": best["config"], "best_vs_peer": best["vs_best_peer"],
                                "best_peer": best["best_peer"],
                                "plain_vs_peer": plain and plain["vs_best_peer"]}  # fmt: skip
    return {"table": table, "speedups": speedups}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown(result, batch_sizes) -> str:
    lines = ["| batch | configuration | steps/s (median) | vs best peer (paired) |", "|---|---|---|---|"]
    for b in batch_sizes:
        for r in sorted((r for r in result["table"] if r["batch"] == b), key=lambda r: -r["median"]):
            vs = f"{r['vs_best_peer']:.2f}x" if "vs_best_peer" in r else ""
            lines.append(f"| {b} | {r['config']} | {r['median']:.1f} | {vs} |")
    lines += ["", "| batch | best gm.train configuration | speed-up vs best peer | plain jitted step (spc=1, no "
              "donation, default XLA) vs best peer |", "|---|---|---|---|"]  # fmt: skip
    for b in batch_sizes:
        s = result["speedups"].get(str(b))
        if s:
            plain = f"{s['plain_vs_peer']:.2f}x" if s["plain_vs_peer"] else "n/a"
            lines.append(f"| {b} | {s['best']} | {s['best_vs_peer']:.2f}x ({s['best_peer']}) | {plain} |")
    return "\n".join(lines)


if __name__ == "__main__":  # a worker: python -m experiments._bench_train JOB_JSON
    print(json.dumps(worker(json.loads(sys.argv[1]))))
