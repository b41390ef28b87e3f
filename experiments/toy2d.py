"""Train a continuous generative model on a 2-D toy, sample it with several samplers, and score it.

    python -m experiments.toy2d --family cfm --dataset moons --out runs/toy2d/cfm-moons
    python experiments/toy2d.py --family cfm --dataset moons --out runs/toy2d/cfm-moons   # the same

The recipe of each family (``experiments/configs/toy2d.py``) is the one of the docs table, the same for
every dataset; options override it. Network ``gm.nets.MLP``; families (``experiments/catalog.py``):

* ``edm``: ``EDMModel`` (EDM preconditioning) + ``edm_loss``;  ``vp`` / ``ve``: ``EDMModel`` with VP / VE
  preconditioning + ``vp_loss`` / ``ve_loss`` (EDM's Table 1 columns);
* ``ncsn``: ``ScoreModel`` + ``ncsn_loss`` over a geometric ladder;  ``ssm``: the same score model trained
  by sliced score matching (SSM-VR) on data perturbed at the ladder's levels;
* ``cfm``: I-CFM / rectified-flow loss on the Linear path;  ``ot-cfm``: the same with a Sinkhorn minibatch
  OT coupling;  ``rectified``: ``cfm`` for (1 - reflow_fraction) of the steps, then one reflow round
  (pairs from the model's own ODE, retrained from its weights) for the rest; reports straightness
  and 1- and 2-step Euler quality before and after.

``DIR/results.json`` holds the config, wall time, ``params_digest`` (sha256 of the EMA parameters, which
are the ones sampled; ``raw_params_digest`` for the raw ones), per sampler ``swd`` / ``mmd`` / NFE, and at
the top level those of the first sampler: ``swd`` (sliced 2-Wasserstein distance of ``n_eval`` samples to
as many fresh data points), ``swd_baseline`` (the same distance between two fresh data sets of that
size with the same projections, averaged over 5 such pairs since it is itself noisy; ``swd_baseline_std``
is their spread, printed beside it: a ratio swd / swd_baseline within ~1 +- 2 std / baseline is noise), ``mmd`` and
``mmd_baseline`` (on 2,000 points each), and ``nll``: minus the mean ``gm.log_prob`` of ``n_test`` fresh
points, in nats, through the probability-flow ODE over the family's training range of sigma
(``nll_sigma_range``). For NCSN and SSM that is the density of the score model's ODE sampler started at
the ladder's top level, not of the Langevin sampler and not a quantity those losses train; it is
reported for comparison only. On ``8gaussians`` ``nll_true`` is the exact value at the same sigma_min.
Pictures: ``samples.png``, ``density.png``, ``trajectories.png``, ``loss.png``.

The swd is a coarse metric: blurring the checkerboard with N(0, 0.1^2) noise raises it by only ~15%
(0.2: ~2.4x), so ``swd <= 2 x swd_baseline`` still allows visibly soft edges; look at ``samples.png``.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import toy2d as configs

OWNED = ("results.json", "config.json", "metrics.jsonl", "checkpoints", "reflow", "samples.png", "density.png",
         "trajectories.png", "loss.png", "results.json.tmp", "config.json.tmp")  # fmt: skip


def run(config: configs.Config, workdir: str | Path, *, resume: bool = False, checkpoint_every: int | None = None,
        quiet: bool = False, break_lock: bool = False) -> dict:  # fmt: skip
    """Train ``config`` in ``workdir``, evaluate, draw; returns the results also written to ``workdir/results.json``.

    ``workdir`` follows the run-directory rules (``gm.train.RunDirectory``, held for the whole run): new or
    empty, or an unfinished run of the same config with ``resume``; anything else is refused."""
    import genmodels as gm  # JAX from here on
    from experiments import _toy2d

    with gm.train.RunDirectory(workdir, resume=resume, config=cli.train_dict(config), owned=OWNED,
                               break_lock=break_lock) as run_dir:  # fmt: skip
        return _toy2d.run(config, run_dir, checkpoint_every=checkpoint_every, quiet=quiet)


def summary_line(config: configs.Config, results: dict) -> str:
    """``swd`` beside its data-vs-data baseline and that baseline's spread, so a ratio reads against noise."""
    base, std = results["swd_baseline"], results.get("swd_baseline_std")
    spread = f" ± {std:.2g}" if std is not None else ""
    nll = f"{results['nll']:.3f} nats" if results.get("nll") is not None else "-"
    return (f"{config.family} on {config.dataset}: swd {results['swd']:.3g} vs data-vs-data {base:.3g}{spread} "
            f"(std over 5 pairs; ratio {results['swd_ratio']:.2f}), nll {nll}")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> tuple[configs.Config, cli.RunOptions]:
    """The config and run options of the command line; refusals exit with status 2 before anything is
    written (``--overwrite`` clears the previous run in ``--out`` here)."""
    return cli.parse(configs, argv, doc=__doc__, owned=OWNED)


def main(argv: list[str] | None = None) -> dict:
    config, opts = parse_args(argv)
    results = cli.run_or_exit("toy2d.py", run, config, opts.out, **opts.run_kwargs())
    print(summary_line(config, results) + f", {results['wall_time']:.0f} s -> {opts.out}")
    return results


if __name__ == "__main__":
    main()
