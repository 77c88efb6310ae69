"""Jupyter notebooks (``.ipynb``, nbformat 4 and 3) as one document of text and code.

Markdown and raw cells are kept as they are written; code cells become fenced blocks in the
notebook's language (```` ```python ```` ... ```` ``` ````), from ``metadata.kernelspec.language``
or ``metadata.language_info.name`` (``python`` when neither is set). Outputs (results, plots,
tracebacks) are dropped: they are generated, often huge (base64 images), and not what the author
wrote. Cells are separated by a blank line; empty cells are left out. Registered as the ``notebook``
input format, picked for ``.ipynb`` files: this module is all there is to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from corpusforge.extract.base import Extracted, ExtractionError
from corpusforge.sources.input_formats import INPUT_FORMATS, Detect, DocumentFormat

if TYPE_CHECKING:
    from corpusforge.extract.detect import Kind
    from corpusforge.extract.formats import ExtractOptions


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", cell.get("input", ""))  # nbformat 3 code cells hold "input"
    text = "".join(src) if isinstance(src, list) else src
    if not isinstance(text, str):
        raise ExtractionError("not a readable Jupyter notebook (a cell's source is not text)")
    return text.strip("\n")


def _language(meta: dict[str, Any]) -> str:
    for key, field in (("kernelspec", "language"), ("language_info", "name")):
        value = (meta.get(key) or {}).get(field) if isinstance(meta.get(key), dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return "python"


def extract_notebook(raw: bytes) -> Extracted:
    """The notebook's markdown and code cells as text, its language and cell counts as metadata."""
    try:
        nb = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ExtractionError(f"not a readable Jupyter notebook (invalid JSON: {exc})") from None
    if not isinstance(nb, dict):
        raise ExtractionError("not a readable Jupyter notebook (no cells)")
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells") or []]
    if not isinstance(cells, list):
        raise ExtractionError("not a readable Jupyter notebook (no cells)")
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    lang = _language(meta)
    pieces: list[str] = []
    counts = {"markdown": 0, "code": 0}
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        kind, text = cell.get("cell_type"), _source(cell)
        if not text.strip():
            continue
        if kind == "code":
            pieces.append(f"```{lang}\n{text}\n```")
            counts["code"] += 1
        elif kind in ("markdown", "raw", "heading"):
            pieces.append(text)
            counts["markdown"] += kind != "raw"
    if not pieces:
        raise ExtractionError("Jupyter notebook has no text or code cells")
    return Extracted("\n\n".join(pieces), {"format": "notebook", "language": lang,
                                           "markdown_cells": counts["markdown"], "code_cells": counts["code"]})


@INPUT_FORMATS.register("notebook")
class NotebookFormat(DocumentFormat):
    """Jupyter notebooks: one document of their markdown and code cells (``extract_notebook``)."""

    extensions = (".ipynb",)
    detect: ClassVar[Detect] = "name"  # JSON bytes: only the name tells a notebook apart

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        return extract_notebook(raw)
