"""Plumbing shared by the experiment scripts: run directories, results.json, argparse types, plots.

Nothing here knows about a particular model family or dataset. A run directory (``--out DIR``) has one
owner, :class:`genmodels.train.RunDirectory`, whose rules every script follows:

* a fresh or empty DIR is used as is; a path that is a file is refused;
* a DIR holding a finished run (``results.json``) is refused unless ``--overwrite`` (which deletes only the
  entries the script says it owns) -- ``--resume`` does not re-open a finished run;
* a DIR holding an unfinished run (``config.json``, ``metrics.jsonl`` or ``checkpoints/`` but no
  ``results.json``) needs ``--resume`` (continue from the latest checkpoint, with the same config) or
  ``--overwrite``; a non-empty DIR that is not a run directory is refused;
* a DIR is held by one job at a time (``run.lock``); a lock left by a job that is gone is taken over, one
  held by a live job (or by a job on another host) refuses the run until ``--break-lock``.

``results.json`` is written atomically (temporary file + fsync + rename, with Ctrl-C held meanwhile), so a
killed or interrupted run leaves either the old file or the new one.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

RUN_MARKERS = (
    "results.json",
    "config.json",
    "metrics.jsonl",
    "checkpoints",
)  # = gm.train.RUN_MARKERS (no JAX import here)


# ---- argparse -------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def add_run_args(parser: argparse.ArgumentParser, *, default_steps: int) -> None:
    """The options every experiment takes: --out, --steps, --checkpoint-every, --resume, --overwrite,
    --break-lock, --seed, --quiet."""
    parser.add_argument("--out", type=Path, required=True, help="run directory (results.json, pictures, checkpoints)")
    parser.add_argument(
        "--steps", type=positive_int, default=default_steps, help="optimiser steps (default %(default)s)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        help="checkpoint every N steps (a checkpoint is always written at the end)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--resume", action="store_true", help="continue an unfinished run in --out from its latest checkpoint"
    )
    group.add_argument("--overwrite", action="store_true", help="delete a previous run in --out and start afresh")
    parser.add_argument("--break-lock", action="store_true", help=BREAK_LOCK_HELP)
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="PRNG seed (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# ---- run directories ------------------------------------------------------------------------------


BREAK_LOCK_HELP = (
    "take the run directory even if its lock names a job that seems alive (make sure it is not "
    "running: two jobs writing one run directory corrupt it)"
)


def __getattr__(name: str) -> Any:
    # RunDirError is genmodels' RunDirectoryError, imported on first use so that this module (and --help)
    # does not import JAX
    if name == "RunDirError":
        from genmodels.errors import RunDirectoryError

        return RunDirectoryError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool, owned: Iterable[str], config: Any = None,
                    break_lock: bool = False) -> Path:  # fmt: skip
    """Check (and with ``overwrite`` clear) the run directory ``out`` (see the module docstring).

    A thin wrapper of :class:`genmodels.train.RunDirectory`: it takes the directory's lock, applies the
    rules, writes nothing but a cleared directory, and releases the lock; training then holds the lock
    through ``fit(run_dir=RunDirectory(...))``. A script that wants the lock for the whole run (evaluation
    and results included) opens ``with RunDirectory(out, ..., owned=OWNED) as run:`` around it instead.

    Args:
        out: the run directory.
        resume, overwrite: the command-line flags (not both).
        owned: names (files or folders directly under ``out``) this script writes; ``overwrite`` deletes
            those and nothing else, and refuses if ``out`` holds anything else.
        config: the training config; when resuming, it must equal the ``config.json`` of the run.
        break_lock: ``--break-lock``.

    Returns:
        ``out`` (created if needed). Raises :class:`RunDirError` (``gm.errors.RunDirectoryError``; its
        subclass ``RunDirectoryLockedError`` when another job holds ``out``) with the reason otherwise.
    """
    from genmodels.errors import ArgumentError, RunDirectoryError
    from genmodels.train import RunDirectory

    try:  # the config is compared on resume; a fresh run's config.json is written by fit when training starts
        run = RunDirectory(out, resume=resume, overwrite=overwrite, owned=tuple(owned), break_lock=break_lock,
                           config=config if resume else None)  # fmt: skip
    except ArgumentError as err:
        raise RunDirectoryError(str(err)) from err
    with run:
        pass
    return Path(out)


def to_json(value: Any) -> Any:
    """Python/numpy/jax scalars and arrays -> JSON-serialisable values (non-finite floats -> None)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        return to_json(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def write_marked_block(path: Path, start: str, end: str, text: str, *, heading: str | None = None) -> None:
    """Replace the part of the markdown file ``path`` between the markers ``start`` and ``end`` by ``text``.

    Without the markers: append ``## heading`` and the marked block when ``heading`` is given (the file
    is created if missing), else raise ``SystemExit`` naming the missing block.
    """
    path = Path(path)
    doc = path.read_text() if path.exists() else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end) :]
    elif heading is not None:
        doc = (doc or "# Results\n").rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    else:
        raise SystemExit(f"{path} has no {start} ... {end} block to replace")
    path.write_text(doc)


def default_steps_per_call(convolutional: bool, otherwise: int) -> int:
    """Train steps per compiled call for ``gm.train.fit``: 1 for a convolutional network on a CPU, where
    XLA runs convolutions inside a loop body many times slower (jax-ml/jax#12868), else ``otherwise``."""
    import jax

    return 1 if convolutional and jax.default_backend() == "cpu" else otherwise


def code_version() -> str | None:
    """The git commit of the code that ran (``<sha>`` or ``<sha>+dirty``), or None outside a git checkout."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return sha.stdout.strip() + ("+dirty" if dirty else "")


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (temporary file, fsync, rename; Ctrl-C held meanwhile)."""
    from genmodels.train import atomic_write

    return atomic_write(path, json.dumps(to_json(data), indent=2, sort_keys=False) + "\n")


# ---- pictures -------------------------------------------------------------------------------------


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(curves: dict[str, list[dict]], path: Path, key: str = "loss") -> Path:
    """Loss curves from ``fit`` histories (rows with ``step`` and ``key``), one line per named curve."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, rows in curves.items():
        pts = [(r["step"], r[key]) for r in rows if key in r and r.get(key) is not None and "event" not in r]
        if pts:
            ax.plot(*zip(*pts, strict=False), label=name, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mosaic(images: np.ndarray, cols: int) -> np.ndarray:
    """(N, H, W) grey images in [0, 1] -> one picture of a grid with 1-pixel gaps (grey 0.5); images smaller
    than 56 pixels are enlarged by nearest neighbour."""
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), 0.5, np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = images[k]
    scale = max(1, 56 // h)
    return np.kron(out, np.ones((scale, scale), np.float32))


def _panel_axes(plt, count: int, size: float = 2.6):
    cols = min(count, 4)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def scatter_panels(panels: dict[str, np.ndarray], path: Path, lim: float, max_points: int = 4000) -> Path:
    """One scatter plot of 2-D points per named panel, on [-lim, lim]^2."""
    plt = pyplot()
    fig, axes = _panel_axes(plt, len(panels))
    for ax, (title, x) in zip(axes, panels.items(), strict=False):
        x = np.asarray(x)[:max_points]
        ax.scatter(x[:, 0], x[:, 1], s=0.8, alpha=0.5, linewidths=0)
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def image_panels(panels: dict[str, np.ndarray], path: Path, lim: float) -> Path:
    """One image per named panel: a (G, G) array over [-lim, lim]^2 (row 0 at the bottom), e.g. a density."""
    plt = pyplot()
    fig, axes = _panel_axes(plt, len(panels))
    for ax, (title, img) in zip(axes, panels.items(), strict=False):
        ax.imshow(np.asarray(img), origin="lower", extent=(-lim, lim, -lim, lim), cmap="viridis", aspect="equal")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def histogram2d(x: np.ndarray, lim: float, bins: int = 100) -> np.ndarray:
    """Normalised 2-D histogram of points x (n, 2) on [-lim, lim]^2, as an image (row index = y)."""
    h, _, _ = np.histogram2d(
        np.asarray(x)[:, 0], np.asarray(x)[:, 1], bins=bins, range=[[-lim, lim], [-lim, lim]], density=True
    )
    return h.T


def trajectory_plot(paths: np.ndarray, path: Path, lim: float, title: str = "") -> Path:
    """Lines through the states ``paths`` (T, N, 2), start (noise) in grey, end points in black."""
    plt = pyplot()
    paths = np.asarray(paths)
    fig, ax = plt.subplots(figsize=(4, 4))
    for i in range(paths.shape[1]):
        ax.plot(paths[:, i, 0], paths[:, i, 1], lw=0.5, alpha=0.6)
    ax.scatter(paths[0, :, 0], paths[0, :, 1], s=3, c="0.6", label="start (noise)")
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=3, c="k", label="end (samples)")
    ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper right", markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
