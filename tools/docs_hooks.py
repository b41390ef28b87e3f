"""Build-time helpers of the documentation site (mkdocs.yml), offline and without executing anything.

* mkdocs hook ``on_files``: each ``notebooks/<name>.ipynb`` becomes the page ``notebooks/<name>.md`` --
  its markdown cells, its code cells and their *stored* outputs (printed text; figures written next to
  the page as PNG files). The notebooks are executed by ``tools/make_notebooks.py``, never by the build.
* griffe extension :class:`LibraryConventions`: the library's docstrings use reST roles
  (``:class:`X```, ``:func:`f```) and ``::`` before literal blocks, which on the site read as code spans
  and a colon; and a package exports a name by ``from ._module import Name as Name`` (no ``__all__``),
  which marks the name public on the site.
"""

from __future__ import annotations

import ast
import base64
import json
import pathlib
import re

import griffe

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
FENCE = "````"  # four backticks: an output that holds three stays inside its block


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _block(text: str, lang: str = "text") -> str:
    return f"{FENCE}{lang}\n{text.rstrip()}\n{FENCE}"


def _outputs(cell: dict, name: str, images: dict[str, bytes]) -> list[str]:
    """Markdown for a code cell's stored outputs; PNG figures are added to ``images`` (path -> bytes)."""
    parts, stream = [], []  # consecutive stream outputs (one per flush) read as one block

    def flush():
        if stream:
            parts.append(_block("".join(stream)))
            stream.clear()

    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            stream.append(_text(out["text"]))
            continue
        flush()
        if kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if "image/png" in data:
                file = f"{name}/figure-{len(images) + 1}.png"
                images[file] = base64.b64decode(_text(data["image/png"]))
                parts.append(f"![figure {len(images)}]({file})")
            elif "text/plain" in data:
                parts.append(_block(_text(data["text/plain"])))
        elif kind == "error":
            parts.append(_block("\n".join(out.get("traceback", [])) or out.get("evalue", "")))
    flush()
    return parts


def notebook_markdown(path: pathlib.Path) -> tuple[str, dict[str, bytes]]:
    """A notebook as a markdown page (its stored outputs included) and the figures the page shows."""
    nb = json.loads(path.read_text())
    name = path.stem
    images: dict[str, bytes] = {}
    note = (
        f'!!! note "A notebook with its stored outputs"\n    This page is `notebooks/{path.name}` as committed, '
        f"outputs included. Run it in Jupyter, or regenerate it (executed) with "
        f"`python tools/make_notebooks.py {name}` from the sources in `notebooks/src/{name}.py`."
    )
    parts = []
    for cell in nb["cells"]:
        src = _text(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            parts.append(src)
            if len(parts) == 1:
                parts.append(note)
        elif cell["cell_type"] == "code":
            parts.append(_block(src, "python"))
            parts.extend(_outputs(cell, name, images))
    if len(parts) == 1 or nb["cells"][0]["cell_type"] != "markdown":
        parts.insert(0, note)
    return "\n\n".join(parts) + "\n", images


def on_files(files, config, **kwargs):
    """mkdocs hook: add one page per committed notebook, and its figures."""
    from mkdocs.structure.files import File

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        page, images = notebook_markdown(path)
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=page))
        for file, png in images.items():
            files.append(File.generated(config, f"notebooks/{file}", content=png))
    return files


_ROLE = re.compile(r":(?:class|func|meth|attr|mod|obj|data|exc|const|ref):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(?<=\S)::$", re.MULTILINE)  # "text::" before an indented block reads "text:"
_LONE_LITERAL = re.compile(r"^(\s*)::$", re.MULTILINE)
# "s_churn: >= 0, ..." or a line opening with ">=": plain text, not a markdown block quote
_QUOTE = re.compile(r"^(\s*(?:[\w*, ]+:\s+)?)>(?!>>)", re.MULTILINE)


def rst_to_markdown(text: str) -> str:
    """Replace reST roles by code spans and ``::`` literal-block markers by a colon (or nothing), and escape
    a ``>`` that opens a line or an entry's description (markdown would read a block quote)."""
    text = _ROLE.sub(lambda m: f"``{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}``", text)
    text = _LONE_LITERAL.sub(r"\1", text)
    text = _QUOTE.sub(r"\1\\>", text)
    return _LITERAL.sub(":", text)


class LibraryConventions(griffe.Extension):
    """Griffe extension: reST roles render as markdown; ``import X as X`` in a package exports ``X``."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)

    def on_alias_instance(self, *, node, alias, **kwargs) -> None:
        if isinstance(node, ast.ImportFrom | ast.Import) and any(n.asname == n.name == alias.name for n in node.names):
            alias.public = True
