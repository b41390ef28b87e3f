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

    python -m experiments.bench_samplers --out runs/bench/cpu.json --markdown runs/bench/cpu.md  # ~20 min, 2 idle cores
    python experiments/bench_samplers.py --quick                                 # small smoke run
    python experiments/bench_samplers.py --denoisers mixture --dims 64 --batches 16384 --samplers Euler,Heun
    python experiments/bench_samplers.py --merge a.json b.json --markdown all.md  # combine partial runs

JSON goes to stdout and to ``--out`` (rewritten after every cell); markdown tables go to stderr and to
``--markdown``.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import bench_samplers as configs


def run(config: configs.Config, *, out: Path | None = None, markdown: Path | None = None) -> dict:
    """Time every cell of ``config``; JSON to stdout and ``out``, markdown to stderr and ``markdown``."""
    from experiments import _bench_samplers  # JAX from here on

    return _bench_samplers.run(config, out=out, markdown_path=markdown)


def merge(paths: tuple[Path, ...], *, out: Path | None = None, markdown: Path | None = None) -> dict:
    """Combine the JSON of partial runs (e.g. cells run in parallel on disjoint cores)."""
    from experiments import _bench_samplers

    results = _bench_samplers.merge(paths)
    _bench_samplers.write_outputs(results, out, markdown)
    return results


def main(argv: list[str] | None = None) -> dict:
    config, opts = cli.parse(configs, argv, doc=__doc__, options=configs.Options)
    if opts.merge:
        return merge(opts.merge, out=opts.out, markdown=opts.markdown)
    return run(config, out=opts.out, markdown=opts.markdown)


if __name__ == "__main__":
    main()
