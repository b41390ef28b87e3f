"""Sampler and likelihood speed of genmodels against k-diffusion, torchdiffeq and score_sde's host loop.

Cells: denoiser (``mlp``: an EDM-preconditioned 4 x 256 SiLU MLP with random weights; ``mixture``: the
exact denoiser of ``gm.targets.random_mixture``, 8 components) x dimension (2, 64) x batch (1, 64, 1,024;
16,384 on request). The torch twins hold the same parameters. Samplers: every continuous sampler that
``gm.samplers`` exports (found at run time, so new ones appear), fixed-step ones on ``karras(steps)`` with
their default options. Per sampler and cell:

* ``median_s`` -- median wall seconds of ``gm.sample(..., noise=eps)`` after a warm-up (block_until_ready);
* ``samples_per_s`` = batch / median_s; ``compile_s`` = first call - median (trace + compile);
* ``nfe`` -- from ``gm.solve(...).nfe``;
* ``overhead`` = median_s / (nfe x t_D), t_D the median seconds of the denoiser alone under ``jax.jit``,
  timed in bursts alternating with the sampler's calls;
* ``draws_per_nfe`` -- standard normals drawn per model call in units of B x d (counted by running the
  program eagerly), ``noise_floor`` = 1 + draws x t_normal / t_D with t_normal one B x d draw inside a
  compiled loop, and ``bound``: "network" (overhead within the goal), "noise draws" (within the goal over
  the floor: the normals an SDE step must draw), or "sampler" (waste left in the sampler).

Peers, same denoiser, same noise, same schedule and options (so the same NFE): k-diffusion's function
of the same algorithm where it exists (Euler, Heun, Euler ancestral, DPM++ 2M, 2M SDE, 3M SDE, 2S
ancestral, LMS), and torchdiffeq's ``dopri5`` against ``gm.samplers.ODE`` (same ODE in the same variable
v = -log sigma, same rtol / atol; both adaptive, so NFE may differ and is reported). Peer and genmodels
calls alternate one by one; ``speedup`` = median of the paired ratios peer / genmodels. Agreement per
sample (largest coordinate difference, 99th percentile against 1e-4 x scale, 1e-2 for the adaptive ODE):
deterministic options as they are; stochastic ones with eta = 0 on both sides, and with genmodels' noise
replayed into k-diffusion's ``noise_sampler``. torch runs with one thread per core, as XLA's CPU client.

The JSON records the date, the load average (start and end of the run and of every cell) and the thread
counts (XLA, torch intra- and inter-op); the markdown's first line states them and marks a table taken
while the 1-minute load exceeded the core count (``--refuse-loaded``: write no markdown then).

Likelihood: ``gm.log_prob`` on 256 exact samples of a 64-D mixture (exact and Hutchinson trace, rtol =
atol = 1e-5), its overhead over NFE x one evaluation of its field (the denoiser, its linearisation and the
trace's Jacobian-vector products, jitted alone), against k-diffusion's ``log_likelihood`` and score_sde's
method (scipy ``solve_ivp`` RK45 on the host calling a jitted drift + divergence at every evaluation); the
spread of the Hutchinson estimate over keys for 1 and several probes.

    python -m experiments.bench_samplers --out runs/bench/cpu.json --markdown runs/bench/cpu.md  # idle cores
    python experiments/bench_samplers.py --quick                                 # small smoke run
    python experiments/bench_samplers.py --denoisers mixture --dims 64 --batches 16384 --samplers Euler,Heun
    python experiments/bench_samplers.py --merge a.json b.json --markdown all.md  # combine partial runs

JSON goes to stdout and to ``--out`` (rewritten after every cell); markdown tables go to stderr and to
``--markdown``.
"""

from __future__ import annotations

import os
from pathlib import Path

from experiments import cli
from experiments.configs import bench_samplers as configs


def run(config: configs.Config, *, out: Path | None = None, markdown: Path | None = None) -> dict:
    """Time every cell of ``config``; JSON to stdout and ``out``, markdown to stderr and ``markdown``."""
    if config.clock == "cpu":  # one XLA thread, set before JAX starts its CPU client
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
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
