"""The ``notebook`` input format (extract/notebook.py), registered in one file and picked by the
``.ipynb`` extension: markdown and code cells as text, outputs dropped, a broken file quarantined."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

from corpusforge.extract.notebook import NotebookFormat
from corpusforge.sources.input_formats import INPUT_FORMATS, reader

from .helpers import read_all

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Word counts\n", "\n", "Count the words of a line."]},
        {"cell_type": "code", "execution_count": 1, "metadata": {},
         "source": ["line = 'the cat sat on the mat'\n", "len(line.split())"],
         "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                      "data": {"text/plain": ["6"]}},
                     {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgoAAAANS"}}]},
        {"cell_type": "raw", "metadata": {}, "source": "raw: kept as written"},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "source": [], "outputs": []},
    ],
}
TEXT = ("# Word counts\n\nCount the words of a line.\n\n"
        "```python\nline = 'the cat sat on the mat'\nlen(line.split())\n```\n\nraw: kept as written")


def test_the_notebook_format_is_registered_for_ipynb() -> None:
    assert INPUT_FORMATS.get("notebook") is NotebookFormat
    assert NotebookFormat.extensions == (".ipynb",) and isinstance(reader("notebook"), NotebookFormat)


def test_a_notebook_is_its_cells_as_text_with_outputs_dropped(tmp_path: Path) -> None:
    (tmp_path / "counts.ipynb").write_bytes(orjson.dumps(NOTEBOOK))
    docs, quarantined = read_all(tmp_path / "counts.ipynb", tmp_path / "q")
    assert quarantined == [] and [d.text for d in docs] == [TEXT]
    assert docs[0].metadata == {"format": "notebook", "language": "python", "markdown_cells": 1, "code_cells": 1,
                                "source_name": "t"}


def test_the_extension_picks_the_reader_for_the_same_bytes(tmp_path: Path) -> None:
    raw = orjson.dumps(NOTEBOOK)
    (tmp_path / "a.ipynb.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "b.json").write_bytes(raw)
    docs, quarantined = read_all(tmp_path, tmp_path / "q")
    assert [(Path(d.source).name, d.text) for d in docs] == [("a.ipynb.gz", TEXT)]
    assert [(Path(q["location"]).name, q["reason"]) for q in quarantined] == [
        ("b.json item 0", "expected an object with a string field 'text'")]


def test_a_truncated_notebook_is_quarantined_with_its_file_and_reason(tmp_path: Path) -> None:
    raw = orjson.dumps(NOTEBOOK)
    (tmp_path / "cut.ipynb").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "good.ipynb").write_bytes(raw)
    docs, quarantined = read_all(tmp_path, tmp_path / "q")
    assert [Path(d.source).name for d in docs] == ["good.ipynb"]
    [q] = quarantined
    assert q["location"] == str(tmp_path / "cut.ipynb")
    assert q["reason"].startswith("not a readable Jupyter notebook (invalid JSON: ")
