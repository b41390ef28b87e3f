"""The documentation site builds offline with warnings as errors: ``mkdocs build --strict`` (mkdocs.yml).

Broken links, pages missing from the nav's targets, and docstrings the API reference cannot parse (griffe
warnings) all fail the build. The notebooks are rendered from their stored outputs (tools/docs_hooks.py),
never executed, so the build takes seconds.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

for _module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
    pytest.importorskip(_module, reason="the docs build needs the `docs` extra: pip install -e '.[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # mkdocs-material's banner about MkDocs 2 (not a warning)
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    assert "WARNING" not in run.stderr, run.stderr[-8000:]
    return out


def test_config_is_offline():
    """No external object inventories (mkdocstrings ``inventories`` / ``import``) and no plugin that fetches."""
    config = (ROOT / "mkdocs.yml").read_text()
    assert not re.search(r"^\s*(inventories|import):", config, re.MULTILINE)
    plugins = re.findall(r"^  - (\w[\w-]*)", config.split("plugins:")[1].split("\n\n")[0], re.MULTILINE)
    assert set(plugins) <= {"search", "autorefs", "mkdocstrings"}, plugins


def test_every_page_is_built(site):
    """Every nav entry became a page; the notebooks show their stored figures."""
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    assert len(nav) > 20
    for page in nav:
        built = site / page.removesuffix(".md") / "index.html" if page != "index.md" else site / "index.html"
        assert built.is_file(), page
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / notebook.stem / "index.html").read_text()
        figures = re.findall(r'src="(figure-\d+\.png)"', html)
        assert figures, f"{notebook.name}: no figure on its page"
        for fig in figures:
            assert (site / "notebooks" / notebook.stem / fig).stat().st_size > 1000


def test_api_reference_renders_docstrings(site):
    """Re-exported names are documented, and reST roles in docstrings read as code, not as raw markup."""
    samplers = (site / "api" / "samplers" / "index.html").read_text()
    for name in ("Heun", "DPMSolverPP2M", "ODE", "Ancestral", "Solution"):
        assert f'id="genmodels.samplers.{name}"' in samplers, name
    for page in (site / "api").glob("*/index.html"):
        text = page.read_text()
        assert ":class:`" not in text and ":func:`" not in text, page.parent.name
