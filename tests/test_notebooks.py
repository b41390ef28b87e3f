"""The committed notebooks are their sources, executed: cells equal to notebooks/src/*.py (tools/make_notebooks.py
writes them), every code cell run, figures stored inline, and nothing a reader should not see (warnings,
errors, object reprs such as ``<matplotlib.legend.Legend at 0x...>``). PNG bytes differ across matplotlib
versions, so figures are checked to exist, not compared. Executing them again is a slow test."""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "tools" / "make_notebooks.py")
make_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_notebooks)

NAMES = make_notebooks.NAMES
MAX_BYTES = 300_000
REPR = re.compile(r"<[\w.]+ (object )?at 0x[0-9a-f]+>")


def _outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def check_outputs(nb, name: str) -> None:
    """Assert what a reader of notebook ``name`` must see, and what not."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), f"{name}: a code cell was not executed"
    outputs = _outputs(nb)
    assert [o for o in outputs if o.output_type == "error"] == [], f"{name}: an error is stored"
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == [], f"{name}: stderr output (a warning?): {stderr}"
    images = [o for o in outputs if o.output_type in ("display_data", "execute_result") and "image/png" in o.data]
    assert images, f"{name}: no figure"
    for o in outputs:
        text = o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
        assert not REPR.search(text), f"{name}: an object repr is shown: {text[:200]}"
        assert "Warning" not in text, f"{name}: a warning is shown: {text[:300]}"


def test_generator_knows_every_notebook():
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_cells_match_source(name):
    """Regenerate with ``python tools/make_notebooks.py NAME`` after editing ``notebooks/src/NAME.py``."""
    assert make_notebooks.check([name]) == [], f"notebooks/{name}.ipynb differs from notebooks/src/{name}.py"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_stores_its_figures(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"
    check_outputs(nbformat.read(path, as_version=4), name)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name):
    """Executes the source in a fresh kernel (minutes): the same checks hold for a fresh run."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = make_notebooks.execute(make_notebooks.build(name))
    check_outputs(nb, name)
