"""Sampling speed of the autoregressive models: samples/s and incremental vs naive re-evaluation.

    python -m experiments.bench_autoregressive --out DIR [--n-dims 784] [--batch 256] [--ratio-dims 784]

For each model, ancestral sampling of ``--n-dims`` bits (a 28 x 28 image for PixelCNN at 784) at batch
``--batch`` through ``gm.sample(model, gm.samplers.Ancestral(), key, shape)``: compile time, then the
median of ``--repeats`` timed runs (``block_until_ready``) with fresh keys. NADE and the Transformer are
also timed with ``Ancestral(incremental=False)`` (the whole network re-run per dimension) at
``--ratio-dims`` bits and ``--ratio-batch``; ``speedup = naive_time / incremental_time``.

Model sizes: ``experiments/configs/bench_autoregressive.py`` (also in the JSON, ``config``). On a CPU use
modest sizes, e.g. ``--n-dims 784 --batch 256 --ratio-dims 196 --ratio-batch 64 --pixelcnn-batch 16``: the
naive Transformer is O(n^3 D) per sample and PixelCNN O(n) full conv passes. Prints JSON and writes
``DIR/results.json``.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import bench_autoregressive as configs


def run(config: configs.Config, workdir: str | Path) -> dict:
    """Time every model of ``config``; writes ``workdir/results.json``."""
    from experiments import _bench_autoregressive  # JAX from here on

    return _bench_autoregressive.run(config, Path(workdir))


def main(argv: list[str] | None = None) -> dict:
    return cli.output_main(
        configs, argv, doc=__doc__, script="bench_autoregressive.py", run=_run_quietly, show=cli.show_json
    )


def _run_quietly(config: configs.Config, opts: configs.Options) -> dict:
    with cli.quiet_if(opts.quiet):
        return run(config, opts.out)


if __name__ == "__main__":
    main()
