"""The work of ``experiments/bench_autoregressive.py`` (imports JAX): samples/s of ancestral sampling and the
speed-up of incremental over naive re-evaluation."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

import genmodels as gm
from experiments import build
from experiments.configs.bench_autoregressive import SIZES, Config
from experiments.configs.binary_density import Config as ArConfig


def build_model(name: str, n: int, seed: int = 0):
    """(model, its size config) of ``name`` over ``n`` bits (PixelCNN: a square image)."""
    sizes = SIZES[name]
    side = int(round(np.sqrt(n)))
    pixel = "pixelcnn" in name
    arch = ArConfig(model="pixelcnn" if pixel else name, **sizes)
    model = build.ar_model(arch, (side, side) if pixel else (n,), nnx.Rngs(seed))
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in sizes.items()}
    if pixel:
        cfg = {"shape": [side, side], "channels": arch.channels, "num_layers": arch.layers, "gated": arch.gated}
    return model, cfg


def n_params(model) -> int:
    return int(sum(np.size(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))


def time_sampling(model, shape, repeats: int, incremental: bool = True) -> dict:
    sampler = gm.samplers.Ancestral(incremental=incremental)
    t0 = time.perf_counter()
    sol = gm.solve(model, sampler, jax.random.key(0), shape)
    jax.block_until_ready(sol.samples)
    compile_s = time.perf_counter() - t0
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(gm.sample(model, sampler, jax.random.key(r + 1), shape))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "shape": list(shape),
        "first_call_s": compile_s,
        "median_s": med,
        "samples_per_s": shape[0] / med,
        "nfe": int(sol.nfe),
        "repeats": repeats,
    }


def run(config: Config, out: Path) -> dict:
    """Time every model of ``config``; prints JSON and writes ``out/results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    res = {"device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(), "jax": jax.__version__,
           "args": dataclasses.asdict(config), "sampling": {}, "incremental_vs_naive": {}}  # fmt: skip
    for name in config.models:
        model, cfg = build_model(name, config.n_dims)
        batch = (config.pixelcnn_batch or config.batch) if "pixelcnn" in name else config.batch
        entry = time_sampling(model, (batch, *model.event_shape), config.repeats)
        entry.update(config=cfg, params=n_params(model), incremental=isinstance(model, gm.protocols.Incremental))
        res["sampling"][name] = entry
        print(json.dumps({name: entry}), flush=True)
    for name in ("nade", "transformer"):
        if name in config.models:
            res["incremental_vs_naive"][name] = incremental_vs_naive(name, config)
            print(json.dumps({name: res["incremental_vs_naive"][name]}), flush=True)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


def incremental_vs_naive(name: str, config: Config) -> dict:
    """Median time of incremental and naive (whole network per dimension) sampling, and their agreement."""
    model, cfg = build_model(name, config.ratio_dims)
    rbatch = config.ratio_batch or config.batch
    shape = (rbatch, config.ratio_dims)
    inc = time_sampling(model, shape, config.repeats, incremental=True)
    naive = time_sampling(model, shape, config.repeats, incremental=False)
    # same key: equal draws up to float rounding (TF32/bf16 matmuls on GPUs can flip near-tie bits)
    draws = [np.asarray(gm.sample(model, gm.samplers.Ancestral(incremental=flag), jax.random.key(7), shape))
             for flag in (True, False)]  # fmt: skip
    return {"n_dims": config.ratio_dims, "batch": rbatch, "incremental_s": inc["median_s"],
            "naive_s": naive["median_s"], "speedup": naive["median_s"] / inc["median_s"],
            "fraction_bits_equal": float(np.mean(draws[0] == draws[1])), "config": cfg}  # fmt: skip
