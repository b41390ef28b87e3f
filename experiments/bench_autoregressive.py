"""Sampling speed of the autoregressive models: samples/s and incremental vs naive re-evaluation.

    python experiments/bench_autoregressive.py --out DIR [--n-dims 784] [--batch 256] [--ratio-dims 784]

For each model, ancestral sampling of ``--n-dims`` bits (a 28 x 28 image for PixelCNN at 784) at batch
``--batch`` through ``gm.sample(model, gm.samplers.Ancestral(), key, shape)``: compile time, then the
median of ``--repeats`` timed runs (``block_until_ready``) with fresh keys. NADE and the Transformer are
also timed with ``Ancestral(incremental=False)`` (the whole network re-run per dimension) at
``--ratio-dims`` bits and ``--ratio-batch``; ``speedup = naive_time / incremental_time``.

Model sizes are the library defaults except where stated in the JSON (``config``). On a CPU use modest
sizes, e.g. ``--n-dims 784 --batch 256 --ratio-dims 196 --ratio-batch 64 --pixelcnn-batch 16``: the naive
Transformer is O(n^3 D) per sample and PixelCNN O(n) full conv passes. Prints JSON and writes
``DIR/results.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

import genmodels as gm

A = gm.autoregressive


def build(name: str, n: int, seed: int = 0):
    rngs = nnx.Rngs(seed)
    if name == "fvsbn":
        return A.FVSBN(n, rngs=rngs), {}
    if name == "nade":
        return A.NADE(n, 500, rngs=rngs), {"hidden": 500}
    if name == "made":
        return A.MADE(n, (500,), rngs=rngs), {"hidden": [500]}
    if name == "transformer":
        return A.Transformer(n, 64, 4, 2, rngs=rngs), {"dim": 64, "heads": 4, "layers": 2}
    if name in ("pixelcnn", "gated_pixelcnn"):
        side = int(round(np.sqrt(n)))
        if side * side != n:
            raise ValueError(f"PixelCNN needs a square number of dims, got {n}.")
        cfg = {"shape": [side, side], "channels": 64, "num_layers": 6, "gated": name == "gated_pixelcnn"}
        return A.PixelCNN((side, side), 64, 6, gated=cfg["gated"], rngs=rngs), cfg
    raise ValueError(name)


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--n-dims", type=int, default=784)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--pixelcnn-batch", type=int, default=None, help="batch for PixelCNN (default --batch)")
    p.add_argument("--ratio-dims", type=int, default=784)
    p.add_argument("--ratio-batch", type=int, default=None, help="batch for the ratio runs (default --batch)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default="fvsbn,nade,made,pixelcnn,gated_pixelcnn,transformer")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    res = {
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "jax": jax.__version__,
        "args": vars(args),
        "sampling": {},
        "incremental_vs_naive": {},
    }
    for name in args.models.split(","):
        model, cfg = build(name, args.n_dims)
        pix = "pixelcnn" in name
        batch = (args.pixelcnn_batch or args.batch) if pix else args.batch
        shape = (batch, *model.event_shape)
        entry = time_sampling(model, shape, args.repeats)
        entry.update(config=cfg, params=n_params(model), incremental=isinstance(model, gm.protocols.Incremental))
        res["sampling"][name] = entry
        print(json.dumps({name: entry}), flush=True)
    rbatch = args.ratio_batch or args.batch
    for name in ("nade", "transformer"):
        if name not in args.models.split(","):
            continue
        model, cfg = build(name, args.ratio_dims)
        shape = (rbatch, args.ratio_dims)
        inc = time_sampling(model, shape, args.repeats, incremental=True)
        naive = time_sampling(model, shape, args.repeats, incremental=False)
        # same key: equal draws up to float rounding (TF32/bf16 matmuls on GPUs can flip near-tie bits)
        agree = float(
            np.mean(
                np.asarray(gm.sample(model, gm.samplers.Ancestral(), jax.random.key(7), shape))
                == np.asarray(gm.sample(model, gm.samplers.Ancestral(incremental=False), jax.random.key(7), shape))
            )
        )
        res["incremental_vs_naive"][name] = {
            "n_dims": args.ratio_dims,
            "batch": rbatch,
            "incremental_s": inc["median_s"],
            "naive_s": naive["median_s"],
            "speedup": naive["median_s"] / inc["median_s"],
            "fraction_bits_equal": agree,
            "config": cfg,
        }
        print(json.dumps({name: res["incremental_vs_naive"][name]}), flush=True)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
