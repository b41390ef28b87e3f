"""Every sampler on an analytic 2-D mixture: error against NFE, and a picture of the samples.

    python -m experiments.sampler_demo --out runs/sampler_demo     # or: python experiments/sampler_demo.py

The model is the exact denoiser of eight Gaussians on a circle (gm.targets.eight_gaussians), so every
difference from the data is the sampler's own error. For each sampler and NFE budget the script reports
the sliced Wasserstein distance to fresh exact samples (``swd``, with ``swd_baseline``, the distance
between two exact sample sets of the same size), the largest error in the component weights, and the
ratio of the within-component spread to the true std. Writes ``results.json`` and ``samples.png`` into
``--out`` and prints the table.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import sampler_demo as configs


def run(config: configs.Config, workdir: str | Path) -> dict:
    """Run every sampler of ``config``; writes ``workdir/results.json`` and ``samples.png``."""
    from experiments import _sampler_demo  # JAX from here on

    return _sampler_demo.run(config, Path(workdir))


def main(argv: list[str] | None = None) -> dict:
    config, opts = cli.parse(configs, argv, doc=__doc__, options=configs.Options)
    return run(config, opts.out)


if __name__ == "__main__":
    main()
