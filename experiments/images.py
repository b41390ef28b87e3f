"""EDM diffusion and flow matching on grey digit images: 8x8 digits (default) or MNIST.

    python -m experiments.images --family edm --dataset digits --out runs/images/edm_digits
    python experiments/images.py --config digits-edm-cpu --out DIR          # sized for 2 CPU cores
    python experiments/images.py --family fm --dataset mnist --data-path ../shared/data/mnist --out DIR

The recipes (``experiments/configs/images.py``) are the rows of docs/results.md; options override them.
Trains ``gm.models.EDMModel`` + ``gm.nets.UNet`` with ``gm.losses.edm_loss`` (``--family edm``) or a
velocity ``gm.models.PathModel`` on the Linear path + UNet with ``gm.losses.cfm_loss`` (``--family fm``),
then on the EMA model:

* samples with 35-NFE Heun (karras(18)) and 10- and 20-NFE DPM-Solver++(2M) (karras(10), karras(20)),
  all from the same initial noise, and saves a grid of each (``samples_<sampler>.png``);
* the classifier-Fréchet distance (``gm.classifier_metric``, *not* Inception FID) of each sampler's samples
  against the held-out images, in the features of a fixed digit classifier shipped with the package
  (``feature_network("digits")`` / ``("mnist")``, trained once on the training split only by
  ``tools/train_fd_networks.py``; never trained per run, so scores compare across runs), as mean ± std
  over ``--fd-seeds`` sampling seeds, beside its floor (as many real training images vs the held-out
  ones, ``floor_real_vs_real``) and its ceiling (uniform noise, ``ceiling_uniform_noise``), each over as
  many draws. A score is good when it is near the floor, worthless near the ceiling;
* test bits/dim with ``gm.log_prob`` (probability-flow ODE; the exact divergence, or Hutchinson's trace
  estimator with ``--bpd-probes`` Rademacher probes per image with ``--bpd-trace hutchinson``) and
  ``gm.bits_per_dim``.

Data and splits. Digits: scikit-learn's 1,797 images, 1,437 for training and 360 held out (fixed seed
``--split-seed``, numpy PCG64 permutation, ``gm.data.split``). MNIST: only the 10,000 official *test*
digits (t10k IDX files) exist here, so they are split 8,000 train / 2,000 held out with the same fixed
seed; every number from this script on MNIST is on that split, not on the official train/test split.

Dequantisation. Pixels take L discrete levels (digits: 17 levels 0..16, MNIST: 256) spaced w apart in
[-1, 1] (w = 2/16 resp. 2/255). The model is trained on uniformly dequantised images x + w (u - 1/2),
u ~ U[0, 1)^D (fresh each step), and bits/dim is measured on held-out images dequantised the same way
(one fixed draw): bpd = (-log p(y) + D log(1/w)) / (D ln 2), i.e. ``gm.bits_per_dim(lp, D, L, L w)``.
By Jensen this is an upper bound on the discrete model's -log2 P(x) / D in expectation over u.

Writes into ``--out``: config.json, metrics.jsonl and checkpoints/ (from ``gm.train.fit``; ``--resume``
continues, also with more ``--steps``; a finished run is redone only with ``--overwrite``), results.json,
samples_*.png, real_test.png and loss.png.
"""

from __future__ import annotations

import math
from pathlib import Path

from experiments import cli
from experiments.configs import images as configs

OWNED = ("results.json", "results.json.tmp", "config.json", "metrics.jsonl", "checkpoints", "loss.png", "real_test.png",
         "samples_heun_35.png", "samples_dpmpp2m_10.png", "samples_dpmpp2m_20.png")  # fmt: skip


def plus_minus(mean: float, std: float | None) -> str:
    """``mean ± std`` with the std to 2 significant digits and the mean to the same decimal place."""
    if std is None or not math.isfinite(std) or std <= 0:
        return f"{mean:.3g}"
    decimals = max(0, 1 - math.floor(math.log10(std)))
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def fd_lines(results: dict) -> list[str]:
    """The Fréchet distances of ``results`` as aligned text lines, each beside the floor and the ceiling."""
    fd = results["classifier_frechet"]
    pm = lambda s: plus_minus(s["mean"], s["std"])
    lines = [f"classifier-Fréchet distance, fixed network {results['dataset']!r}: {fd['num_samples']} samples vs "
             f"{fd['reference']},", f"mean ± std over {fd['seeds']} seeds (lower is better)",
             f"  {'floor: real vs real':<24}{pm(fd['floor_real_vs_real']):>18}",
             f"  {'ceiling: uniform noise':<24}{pm(fd['ceiling_uniform_noise']):>18}"]  # fmt: skip
    for name, e in results["samplers"].items():
        label = f"{name} (NFE {e['nfe']})"
        lines.append(f"  {label:<24}{pm(e['classifier_fd']):>18}")
    return lines


def check_data(config: configs.Config) -> None:
    """The MNIST folder exists (checked before anything is written)."""
    if config.dataset == "mnist" and not Path(config.data_path).is_dir():
        raise ValueError(f"--data-path {config.data_path} is not a folder holding the MNIST IDX files")


def run(config: configs.Config, workdir: str | Path, *, resume: bool = False, checkpoint_every: int | None = None,
        quiet: bool = False, break_lock: bool = False) -> dict:  # fmt: skip
    """Train ``config`` in ``workdir``, evaluate, draw; returns the results also written to ``workdir/results.json``.

    ``workdir`` follows the run-directory rules (``gm.train.RunDirectory``, held for the whole run): new or
    empty, or an unfinished run of the same config with ``resume``; anything else is refused."""
    check_data(config)
    import genmodels as gm  # JAX from here on
    from experiments import _images

    with gm.train.RunDirectory(workdir, resume=resume, config=cli.train_dict(config), owned=OWNED,
                               break_lock=break_lock) as run_dir:  # fmt: skip
        return _images.run(config, run_dir, checkpoint_every=checkpoint_every, quiet=quiet)


def main(argv: list[str] | None = None) -> dict:
    config, opts = cli.parse(configs, argv, doc=__doc__, owned=OWNED, check=check_data)
    results = cli.run_or_exit("images.py", run, config, opts.out, **opts.run_kwargs())
    bpd = results["bits_per_dim"]  # printed also with --quiet, which only turns off the progress display
    print(f"{config.family} on {config.dataset}, {results['steps']} steps: test bits/dim "
          f"{plus_minus(bpd['mean'], bpd['stderr'])} (± standard error, {bpd['num_images']} images)")  # fmt: skip
    print("\n".join(fd_lines(results)) + f"\nresults, pictures: {opts.out}")
    return results


if __name__ == "__main__":
    main()
