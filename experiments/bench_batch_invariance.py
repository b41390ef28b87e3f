"""Per-row against shared step-size control, and PredictorCorrector's step-size rules (issue 11).

Prints one JSON object per line. Run: ``python experiments/bench_batch_invariance.py [--quick]``.

* ``per_row``: ``ODE`` and ``SDE`` with one controller for the batch (``per_sample=False``) and one per row
  (``per_sample=True``), on the 64-D random mixture (exact denoiser) and on a random MLP denoiser in 64-D.
  Reported: NFE (per row: min / median / max), batched model calls (= max NFE per row for the per-row
  solve: a vmapped loop runs until its slowest row is done), row evaluations (batch x batched calls, the
  compute), wall time (median of 3 runs after compiling), and each row's error against an accurate solve
  from the same noise and Brownian path (ODE: float64 at rtol = atol = 1e-9; SDE: the same sampler at
  rtol = atol = 1e-3), as the RMS over the row's coordinates.
* ``pc``: ``PredictorCorrector`` with norms = batch / sample / sigma on mixtures: total-variation distance
  of the component frequencies from the weights, and the within-component spread ratio.
"""

from __future__ import annotations

import argparse
import json
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import genmodels as gm  # noqa: E402

S = gm.samplers


class RandomMLPDenoiser(nnx.Module):
    """An untrained MLP as a denoiser: D = c_skip x + c_out tanh(F(c_in x, log sigma / 4)), EDM's
    preconditioning for data of unit scale, with F's output layer drawn at random (the library's MLP
    starts it at zero) so that D is a non-trivial smooth function."""

    def __init__(self, dim: int, key: int = 0):
        self.net = gm.nets.MLP(dim, hidden=256, depth=3, rngs=nnx.Rngs(key))
        kernel = self.net.out.kernel
        kernel[...] = 0.3 * (jax.random.normal(jax.random.key(key + 1), kernel.shape, jnp.float64) / 16.0).astype(
            kernel.dtype
        )

    def __call__(self, x, sigma):
        s2 = 1.0 + sigma**2
        f = jnp.tanh(self.net(x / jnp.sqrt(s2), jnp.log(sigma) / 4.0))
        return x / s2 + sigma / jnp.sqrt(s2) * f


def _timed(fn, repeats: int = 3):
    out = jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def _row_rms(x, ref):
    d = np.asarray(x, np.float64) - np.asarray(ref, np.float64)
    return np.sqrt(np.mean(d.reshape(d.shape[0], -1) ** 2, axis=1))


def per_row(model, name: str, batch: int, dim: int, kind: str) -> list[dict]:
    key = jax.random.key(0)
    noise = jax.random.normal(jax.random.key(1), (batch, dim), jnp.float64)
    rows = []
    for per_sample in (False, True):
        if kind == "ODE":
            sampler = S.ODE(per_sample=per_sample)
            ref = gm.sample(model, S.ODE(rtol=1e-9, atol=1e-9, max_steps=100_000), key, (batch, dim), noise=noise)
        else:
            sampler = S.SDE(per_sample=per_sample)
            accurate = S.SDE(per_sample=per_sample, rtol=1e-3, atol=1e-3, max_steps=100_000)
            ref = gm.sample(model, accurate, key, (batch, dim), noise=noise.astype(jnp.float32))
        sol, seconds = _timed(lambda s=sampler: gm.solve(model, s, key, (batch, dim), noise=noise.astype(jnp.float32)))
        nfe = np.atleast_1d(np.asarray(sol.nfe))
        err = _row_rms(sol.samples, ref)
        calls = int(nfe.max())
        rows.append({
            "bench": "per_row", "model": name, "sampler": kind, "per_sample": per_sample, "batch": batch,
            "nfe_min": int(nfe.min()), "nfe_median": float(np.median(nfe)), "nfe_max": calls,
            "batched_calls": calls, "row_evaluations": calls * batch,
            "useful_row_evaluations": int(nfe.sum()) if per_sample else calls * batch,
            "seconds": seconds, "err_median": float(np.median(err)), "err_p90": float(np.quantile(err, 0.9)),
            "err_max": float(err.max()),
        })  # fmt: skip
    return rows


def pc_rules(mix, name: str, batch: int, steps: int) -> list[dict]:
    rows = []
    dim = int(mix.means.shape[-1])
    for norms in ("batch", "sample", "sigma"):
        sampler = S.PredictorCorrector(gm.schedules.karras(steps, 0.002, 80.0), norms=norms)
        x = gm.sample(mix, sampler, jax.random.key(2), (batch, dim))
        comp = np.asarray(mix.component_of(x))
        freq = np.bincount(comp, minlength=mix.weights.shape[0]) / batch
        resid = np.asarray(x) - np.asarray(mix.means)[comp]
        spread = np.asarray(mix.stds)[comp] if np.ndim(mix.stds) == 2 else np.asarray(mix.stds)[comp][:, None]
        rows.append({
            "bench": "pc", "target": name, "norms": norms, "batch": batch, "steps": steps,
            "tv_weights": float(0.5 * np.abs(freq - np.asarray(mix.weights)).sum()),
            "spread_ratio": float(np.sqrt(np.mean((resid / spread) ** 2))),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batches")
    parser.add_argument("--part", default="all", choices=["all", "ODE", "SDE", "pc"], help="one part only")
    args = parser.parse_args()
    batch = 64 if args.quick else 256
    mix64 = gm.targets.random_mixture(jax.random.key(0), 64)
    mlp = RandomMLPDenoiser(64)
    for kind in ("ODE", "SDE"):
        if args.part not in ("all", kind):
            continue
        for model, name in ((mix64, "mixture64"), (mlp, "mlp64")):
            for row in per_row(model, name, batch, 64, kind):
                print(json.dumps(row), flush=True)
    if args.part not in ("all", "pc"):
        return
    mix2 = gm.targets.GaussianMixture(
        jnp.array([0.5, 0.3, 0.2]), jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]]), jnp.array([0.3, 0.5, 0.4])
    )
    for mix, name in ((mix2, "mixture2"), (mix64, "mixture64")):
        for row in pc_rules(mix, name, 4096 if not args.quick else 1024, 100):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
