"""Density estimation of binary data with the autoregressive models, trained by ``gm.train.fit``.

    python -m experiments.binary_density --model made --dataset dna --out DIR    # the 84.1-nat recipe
    python experiments/binary_density.py --config dna-made-masks --out DIR       # a named recipe
    python experiments/binary_density.py --model made --dataset npz --data-path my.npz --out DIR

The default of each (model, dataset) is the recipe of its row in docs/results.md
(``experiments/configs/binary_density.py``); options override it.

Data: ``dna`` / ``mushrooms`` are the standard splits (``.npz`` with train_data / valid_data / test_data
under ``../shared/data/uci-binary``); ``npz`` is any such file of yours (``--data-path``; no published
reference is attached); ``digits`` is scikit-learn's 8x8 digits thresholded at 0.5 (split 1297 / 250 / 250,
seed 0); ``mnist`` binarises the 10,000 official MNIST *test* digits from IDX files (``--data-path`` folder)
and splits them 8,000 / 1,000 / 1,000 with a fixed seed: its numbers are not comparable with the standard
50k-train binarised MNIST, as every output says.

Training: Adam(W) on the mean NLL (``gm.autoregressive.nll_loss``; MADE draws one of its ``--num-masks``
masks per step) plus an optional L2 penalty ``--l2`` on the weight matrices, EMA of the parameters,
validation NLL every ``--validate-every`` steps with early stopping after ``--patience`` validations without
improvement; the best validated parameters are evaluated on the test set. MADE with several masks reports
the mask ensemble (log-mean-exp of the masks' probabilities) as ``test_nll_nats`` and a single mask beside it.

Writes into ``--out`` (the run-directory rules of ``experiments/common.py``: a folder of other files or a
finished run is refused, ``--resume`` continues an unfinished one): ``results.json`` (``test_nll_nats``,
the ``recipe`` it matches and the rest), ``config.json``, ``metrics.jsonl``, ``checkpoints/`` and, for
images, ``samples.png``, ``completions.png`` (top half given, bottom half sampled) and ``images.json``.
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import binary_density as configs

OWNED = ("results.json", "results.json.tmp", "config.json", "metrics.jsonl", "checkpoints", "samples.png",
         "completions.png", "images.json", "images.json.tmp")  # fmt: skip


NPZ_ARRAYS = ("train_data", "valid_data", "test_data")


def check_data(config: configs.Config) -> None:
    """The data file or folder exists and an ``.npz`` holds the three arrays (checked before anything is
    written, without JAX; the values are checked when :func:`run` loads them, also before writing)."""
    path, folder = config.data_source(), config.dataset == "mnist"
    if config.dataset == "npz" and path is None:
        raise ValueError("--dataset npz needs --data-path FILE.npz (arrays train_data, valid_data, test_data)")
    if path is not None and not (path.is_dir() if folder else path.is_file()):
        want = "a folder of MNIST IDX files" if folder else "an .npz file with train_data, valid_data, test_data"
        raise ValueError(f"--data-path {path} is not {want}")
    if path is not None and not folder:
        _check_npz(path)


def _check_npz(path: Path) -> None:
    """``path`` is a zip of ``.npy`` arrays (what ``numpy.savez`` writes) holding :data:`NPZ_ARRAYS`."""
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"--data-path {path} is not an .npz archive (a zip of .npy arrays, as numpy.savez "
                         f"writes); a binary data file holds the arrays {', '.join(NPZ_ARRAYS)}")  # fmt: skip
    with zipfile.ZipFile(path) as archive:
        found = sorted(n.removesuffix(".npy") for n in archive.namelist())
    missing = [k for k in NPZ_ARRAYS if k not in found]
    if missing:
        raise ValueError(f"--data-path {path} lacks the array(s) {', '.join(missing)} (it holds {', '.join(found)}); "
                         f"a binary data file holds {', '.join(NPZ_ARRAYS)}")  # fmt: skip


def load_data(config: configs.Config):
    """:func:`check_data`, then the splits, read and checked by the library (imports JAX): a file of wrong
    values is an error (a ``ValueError`` naming the file) before the run directory is touched."""
    check_data(config)
    from experiments import _binary_density

    return _binary_density.load(config)


def run(config: configs.Config, workdir: str | Path, *, resume: bool = False, checkpoint_every: int | None = None,
        quiet: bool = False, break_lock: bool = False) -> dict:  # fmt: skip
    """Train ``config`` in ``workdir``, evaluate; returns the results also written to ``workdir/results.json``.

    ``workdir`` follows the run-directory rules (``gm.train.RunDirectory``, held for the whole run): new or
    empty, or an unfinished run of the same config with ``resume``; anything else is refused."""
    data = load_data(config)
    import genmodels as gm  # JAX from here on
    from experiments import _binary_density

    with gm.train.RunDirectory(workdir, resume=resume, config=cli.train_dict(config), owned=OWNED,
                               break_lock=break_lock) as run_dir:  # fmt: skip
        return _binary_density.run(config, run_dir, data=data, checkpoint_every=checkpoint_every, quiet=quiet)


def main(argv: list[str] | None = None) -> dict:
    config, opts = cli.parse(configs, argv, doc=__doc__, owned=OWNED, check=load_data)  # data before --out
    return cli.run_or_exit("binary_density.py", run, config, opts.out, **opts.run_kwargs())


if __name__ == "__main__":
    main()
