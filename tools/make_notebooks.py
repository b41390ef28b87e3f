"""Regenerate notebooks/*.ipynb from their sources in notebooks/src/*.py, executed, with their outputs stored.

The sources are plain text in the "percent" format (cells start at a ``# %%`` line; a ``# %% [markdown]``
cell's lines start with ``# ``), so a change to a notebook is a reviewable diff of code. The committed
notebooks hold their executed outputs (figures inline as PNG, printed tables) so that a reader sees them on
the web, in Jupyter and on the documentation site without running anything::

    .venv/bin/python tools/make_notebooks.py                  # all three, executed (a few minutes on 2 cores)
    .venv/bin/python tools/make_notebooks.py sampler_api      # one of them
    .venv/bin/python tools/make_notebooks.py --no-execute     # cells only, no outputs (quick look)
    .venv/bin/python tools/make_notebooks.py --check          # committed code cells == sources? (exit 1 if not)

Executing needs nbclient and ipykernel (the ``test`` extra). tests/test_notebooks.py checks that the
committed notebooks' cells match these sources and that each holds figures and no warnings.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
NAMES = ("sampler_api", "train_toy2d", "autoregressive_digits")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def read_cells(name: str) -> list[tuple[str, str]]:
    """The cells of ``notebooks/src/<name>.py`` as ``(cell_type, source)``, cell_type "markdown" or "code"."""
    cells: list[tuple[str, list[str]]] = []
    for line in (SOURCES / f"{name}.py").read_text().splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif not cells:
            if line.strip():
                raise ValueError(f"notebooks/src/{name}.py: text before the first '# %%' cell marker: {line!r}")
        elif cells[-1][0] == "markdown":
            if line and not line.startswith("#"):
                raise ValueError(f"notebooks/src/{name}.py: a markdown line must start with '#': {line!r}")
            cells[-1][1].append(line[2:] if line.startswith("# ") else line[1:])
        else:
            cells[-1][1].append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def build(name: str):
    """An unexecuted notebook (nbformat v4) holding the cells of ``notebooks/src/<name>.py``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for kind, src in read_cells(name):
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(new(src))
    for i, cell in enumerate(nb.cells):  # stable ids: a regenerated notebook differs only where its content does
        cell["id"] = f"{name[:20]}-{i:02d}"
    return nb


def execute(nb, timeout: int = 1200):
    """Run every cell in a fresh kernel (working directory: a temporary folder) and keep the outputs."""
    import nbclient

    env_backend = os.environ.pop("MPLBACKEND", None)  # the notebooks choose the inline backend themselves
    try:
        with tempfile.TemporaryDirectory() as cwd:
            client = nbclient.NotebookClient(
                nb, timeout=timeout, kernel_name="python3", record_timing=False, resources={"metadata": {"path": cwd}}
            )
            client.execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    return nb


def code_cells(nb) -> list[str]:
    """The sources of a notebook's code cells, in order."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def check(names) -> list[str]:
    """Names of committed notebooks whose cells differ from their sources."""
    import nbformat

    stale = []
    for name in names:
        committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        if [(c.cell_type, c.source) for c in committed.cells] != read_cells(name):
            stale.append(name)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Write notebooks/<name>.ipynb from notebooks/src/<name>.py and store its executed outputs.",
        epilog="example: python tools/make_notebooks.py sampler_api",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them (no outputs)")
    parser.add_argument("--check", action="store_true", help="only compare committed notebooks with their sources")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell (default 1200)")
    args = parser.parse_args(argv)
    names = args.names or list(NAMES)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown notebook {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    if args.check:
        stale = check(names)
        print("stale: " + ", ".join(stale) if stale else f"up to date: {', '.join(names)}")
        return 1 if stale else 0
    import nbformat

    for name in names:
        t0 = time.perf_counter()
        nb = build(name)
        if not args.no_execute:
            execute(nb, args.timeout)
        out = NOTEBOOKS / f"{name}.ipynb"
        nbformat.write(nb, out)
        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size / 1024:.0f} KB, {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
