"""Guidance scored against ground truth: classifier-free guidance (CFG), CFG with a guidance interval and
autoguidance on an analytic class-conditional mixture, per method and guidance weight w.

    python -m experiments.guidance --out runs/guidance      # or: python experiments/guidance.py

The target is ``gm.targets.branching_tree`` (two classes, each a binary tree of thin full-covariance
components, in the spirit of EDM2's toy example; ``--depth`` levels). It has exact class-conditional and
unconditional denoisers, so the models can be made imperfect in a controlled way and still be evaluated
exactly: the "good" model is the target with every component too wide (``--good-widen``), the "bad" guide of
autoguidance wider still (``--bad-widen``, optionally with coarser components, ``--bad-per-branch``). CFG
guides the good conditional model with the good unconditional one (Ho & Salimans 2022), CFG-interval does so
only for sigma in each of ``--intervals`` (Kynkaanniemi et al. 2024), autoguidance with the bad conditional model
(Karras et al. 2024). Per method and w:

* precision: the mean exact log-density of the samples under their TRUE class distribution, log p(x | y)
  (higher is sharper; the exact samples' own value, minus the entropy, is printed for reference: above it,
  the samples are more concentrated than the data);
* coverage: the sliced 2-Wasserstein distance of each class's samples to as many exact samples of that class,
  averaged over classes, beside the same distance between two exact sample sets (the finite-sample
  baseline; mean ± std over ``--baseline-pairs`` pairs): a ratio near 1 means the class is covered;
* MMD²: the squared maximum mean discrepancy to the same exact samples with small Gaussian kernels (0.02,
  0.05, 0.2; the components' standard deviations are 0.004-0.03), beside its exact-vs-exact baseline. The
  sliced W2 barely sees a branch that is too thick or too thin; the MMD does, so it flags over-sharpening;
* NFE: network evaluations counted by ``gm.solve`` (2 per guided call, 1 outside the interval).

Heun on Karras' grid (``--steps``) from the same noise for every row; the sampler's own error is reported
(the good model at 2 x steps against ``--steps``). Writes results.json, table.md, samples.png and
tradeoff.png into ``--out``.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import guidance as configs


def run(config: configs.Config, workdir: str | Path, *, quiet: bool = False) -> dict:
    """Every method at every weight; writes ``workdir/results.json``, ``table.md`` and the pictures."""
    from experiments import _guidance  # JAX from here on

    return _guidance.run(config, Path(workdir), quiet=quiet)


def main(argv: list[str] | None = None) -> dict:
    config, opts = cli.parse(configs, argv, doc=__doc__, options=configs.Options)
    return run(config, opts.out, quiet=opts.quiet)


if __name__ == "__main__":
    main()
