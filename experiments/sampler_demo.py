"""Every sampler on an analytic 2-D mixture: error against NFE, and a picture of the samples.

    python -m experiments.sampler_demo --out runs/sampler_demo     # or: python experiments/sampler_demo.py
    python experiments/sampler_demo.py --samplers euler heun --nfe 10 20 --seeds 3 --out /tmp/sd --overwrite

The model is the exact denoiser of eight Gaussians on a circle (gm.targets.eight_gaussians), so every
difference from the data is the sampler's own error. For each sampler and NFE budget the script reports
the sliced Wasserstein distance to fresh exact samples (``swd``, with ``swd_baseline``, the distance
between two exact sample sets of the same size), the largest error in the component weights, and the
ratio of the within-component spread to the true std, as mean ± std over ``--seeds`` seeds (a one-seed
swd of a stochastic sampler moves by its own noise: compare differences with the std). Each row gives
the budget asked for and the NFE actually spent (Heun spends 2 per step but 1 on the last; the adaptive
ODE as many as its tolerance needs). Writes ``results.json`` and ``samples.png`` (one panel per sampler
and budget, titled with sampler, budget and NFE) into ``--out`` and prints the table.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import sampler_demo as configs


def run(config: configs.Config, workdir: str | Path, *, quiet: bool = False) -> dict:
    """Run every sampler of ``config``; writes ``workdir/results.json`` and ``samples.png``."""
    from experiments import _sampler_demo  # JAX from here on

    return _sampler_demo.run(config, Path(workdir), quiet=quiet)


def main(argv: list[str] | None = None) -> dict:
    return cli.output_main(configs, argv, doc=__doc__, script="sampler_demo.py",
                           run=lambda config, opts: run(config, opts.out, quiet=opts.quiet), show=_show)  # fmt: skip


def _show(results: dict, quiet: bool) -> None:
    """The earlier table, also with ``--quiet`` (which leaves only the table)."""
    from experiments import _sampler_demo

    print(_sampler_demo.table(results["rows"], results.get("seeds", 1)))


if __name__ == "__main__":
    main()
