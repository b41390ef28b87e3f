"""Training throughput: a CFM MLP trained with gm.train's compiled step against torchcfm and flow_matching.

Same network (input (x, t) in R^3, 4 hidden layers of 256 with SiLU, output R^2; 198,914 parameters), same
loss (I-CFM / rectified flow, sigma = 0: x_t = (1 - t) x0 + t x1, target x1 - x0; torchcfm's
``ConditionalFlowMatcher(sigma=0)`` and flow_matching's ``AffineProbPath(CondOTScheduler())`` build x_t and
the target on the torch side), same data (8 Gaussians on a circle of radius 1.4, std 0.14, sampled inside
every step), same optimiser (Adam, lr 1e-3, no clipping, no EMA), same batch, float32.

The JAX side is exactly what ``gm.train.fit`` dispatches (``gm.train.make_train_call``: a ``fori_loop`` of
``steps_per_call`` steps, optional buffer donation, the NaN guard), driven like ``fit`` (one call in flight,
the previous call's losses read back). One process per (batch size, XLA flag set) -- XLA flags must be set
before jax is imported -- holds every JAX configuration and the torch peers and measures them in
alternating bursts of ``--seconds``, ``--reps`` times in shuffled order, so that load from other processes
on a shared machine hits all of them alike. Reported: median steps/s per configuration, and the *paired*
speed-up: median over bursts of (gm.train burst rate) / (median rate of the best peer in the same process).

JAX levers: ``steps_per_call`` (steps per dispatch), donation on/off, XLA CPU flag sets (oneDNN matmuls,
XNNPACK dots, single-threaded Eigen). torch: ``--torch-threads`` intra-op threads.

    .venv/bin/python -m experiments.bench_train --out runs/bench_train
    .venv/bin/python experiments/bench_train.py --out runs/bench_train --quick   # a smaller grid

Writes ``OUT/results.json`` (every burst, medians, speed-ups, load averages) and prints markdown tables.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import bench_train as configs


def run(config: configs.Config, workdir: str | Path) -> dict:
    """Run the grid of ``config``; writes ``workdir/results.json``."""
    from experiments import _bench_train  # the workers import JAX, each with its XLA flags

    return _bench_train.run(config, Path(workdir))


def main(argv: list[str] | None = None) -> dict:
    return cli.output_main(configs, argv, doc=__doc__, script="bench_train.py", run=_run_quietly, show=cli.show_json)


def _run_quietly(config: configs.Config, opts: configs.Options) -> dict:
    with cli.quiet_if(opts.quiet):
        return run(config, opts.out)


if __name__ == "__main__":
    main()
