"""The input-format registry: every file extension the source knows maps to a registered reader,
the files source dispatches by it, and every source's documents carry ``source_name`` without
the source stamping it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from corpusforge import run
from corpusforge.cli import main as cli
from corpusforge.document import Document, make_doc_id
from corpusforge.errors import RecipeError
from corpusforge.extract.detect import CODE_EXTENSIONS, extension, sniff
from corpusforge.observe.lineage import read_lineage
from corpusforge.observe.stats import TaskContext
from corpusforge.registry import SOURCES
from corpusforge.sources.base import Part, Source, TaskInput
from corpusforge.sources.files import FilesSource, format_of
from corpusforge.sources.input_formats import (
    INPUT_FORMATS,
    DocumentFormat,
    InputFormat,
    detected_kind,
    forceable_formats,
    reader,
)
from tests.conftest import SHARED_DATA, small_recipe

from .helpers import read_all

BOOK = SHARED_DATA / "prose" / "gutenberg" / "pg84.txt"

# Every extension the files source knew before the registry, and the format it meant.
KNOWN = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv", ".tsv": "tsv", ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".rst": "rst", ".rest": "rst", ".html": "html", ".htm": "html", ".xhtml": "html", ".xml": "xml",
    ".svg": "xml", ".warc": "warc", ".arc": "warc", ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".doc": "legacy_office", ".xls": "legacy_office",
    ".ppt": "legacy_office", ".epub": "epub", ".odt": "odf", ".odp": "odf", ".ods": "odf",
    ".ipynb": "notebook", ".tar": "tar", ".tgz": "tar", ".zip": "archive", ".arrow": "arrow",
    ".feather": "arrow", ".ipc": "arrow", ".png": "image", ".jpg": "image", ".wav": "audio",
    ".flac": "audio", ".mp4": "video", ".webm": "video", ".txt": "text",
    **{ext: "code" for ext in CODE_EXTENSIONS},
}


def _claimed() -> dict[str, str]:
    return {ext: n for n in INPUT_FORMATS.names() for ext in INPUT_FORMATS.get(n).extensions}


def test_every_known_extension_is_claimed_by_the_format_it_names() -> None:
    claimed = _claimed()
    assert {ext: claimed.get(ext) for ext in KNOWN} == KNOWN


def test_no_extension_is_claimed_twice() -> None:
    seen: dict[str, str] = {}
    for name in INPUT_FORMATS.names():
        for ext in INPUT_FORMATS.get(name).extensions:
            assert ext not in seen, f"{ext} is claimed by {seen.get(ext)} and {name}"
            seen[ext] = name


def test_every_registered_format_is_an_input_format_with_a_reader() -> None:
    for name in INPUT_FORMATS.names():
        fmt = reader(name)
        assert isinstance(fmt, InputFormat) and fmt.name == name
        assert type(fmt).read is not InputFormat.read, f"{name} has no read()"
        if isinstance(fmt, DocumentFormat):
            assert type(fmt).extract is not DocumentFormat.extract, f"{name} has no extract()"


def test_planning_decides_records_and_archives_by_name_and_the_rest_is_text() -> None:
    assert [format_of(p) for p in ("a.jsonl.gz", "b.PARQUET", "c.tsv", "d.tar.zst", "e.zip", "f.feather")] == [
        "jsonl", "parquet", "tsv", "tar", "archive", "arrow"]
    assert [format_of(p) for p in ("notes.md", "page.html", "x.pdf", "unknown.qqq", "README")] == ["text"] * 5


def test_an_unknown_extension_reads_as_text_and_binary_bytes_are_quarantined(tmp_path: Path) -> None:
    (tmp_path / "notes.qqq").write_text("Plain words in a file named oddly.\n")
    (tmp_path / "blob.qqq").write_bytes(b"\x00\x01\x02 binary")
    assert detected_kind(".qqq") is None
    docs, quarantined = read_all(tmp_path, tmp_path / "q")
    assert [d.text for d in docs] == ["Plain words in a file named oddly.\n"]
    assert [(Path(q["location"]).name, q["reason"]) for q in quarantined] == [
        ("blob.qqq", "binary file (NUL bytes), not text")]


def test_a_format_option_naming_no_input_format_is_a_recipe_error() -> None:
    assert "notebook" in forceable_formats() and "image" not in forceable_formats()
    with pytest.raises(RecipeError, match=r"format: 'notbook' is not an input format; allowed: auto, .*notebook"):
        run({"sources": [{"path": str(BOOK), "format": "notbook"}], "steps": []}, output="/nonexistent/never")


def test_sniff_takes_name_decided_formats_from_the_registry() -> None:
    head = b'{"cells": [], "metadata": {}}'
    assert sniff(head, "a.ipynb").family == "notebook"
    assert sniff(head, "a.json").family == "json"
    assert sniff(b"%PDF-1.7 ...", "a.ipynb").family == "pdf"  # bytes first, name second
    assert (sniff(b"just text", "a.pdf").family, sniff(b"just text", "a.pdf").language) == ("mismatch", "pdf")


def test_options_are_grouped_into_the_reader_they_belong_to() -> None:
    src = FilesSource("s", str(BOOK), csv_delimiter=";", csv_header=False, csv_columns=["text"], media="pass",
                      media_roots=[" /data/media "])
    assert (src.csv.delimiter, src.csv.header, src.csv.columns) == (";", False, ["text"])
    assert src.media == "pass" and src.media_reading.options.media_roots == ("/data/media",)
    assert extension("x.CSV.gz") == ".csv"


# -- source_name is stamped by the base class, for every source --------------------------------------

@SOURCES.register("test_paragraphs")
class ParagraphsSource(Source):
    """A minimal source: the first ``count`` paragraphs of a book; it never sets ``source_name``."""

    def __init__(self, name: str, path: str, count: int = 200):
        self.source_name, self.path, self.count = name, path, count

    def plan(self, task_bytes: int) -> list[TaskInput]:
        return [TaskInput(self.source_name, (Part(self.path, key=Path(self.path).name),))]

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        paras = [p for p in Path(self.path).read_text(encoding="utf-8").split("\n\n") if p.strip()]
        for i, text in enumerate(paras[: self.count]):
            yield Document(text, make_doc_id(f"{self.source_name}/book", i, text), self.path, i, {"n": i})


def test_a_source_that_does_not_stamp_its_documents_still_carries_source_name(tmp_path: Path) -> None:
    src = ParagraphsSource("plain", str(BOOK), count=5)
    ctx = TaskContext("curate", 0, tmp_path)
    [task] = src.plan(1 << 20)
    for docs in (list(src.read(task, ctx)), list(src.documents(task, ctx))):
        assert [d.metadata for d in docs] == [{"n": i, "source_name": "plain"} for i in range(5)]


def test_a_source_may_not_override_documents() -> None:
    with pytest.raises(TypeError, match="overrides Source.documents"):
        class Sneaky(ParagraphsSource):
            def documents(self, task, ctx):  # type: ignore[override]
                return iter(())


def _mixed(out: Path, mixture: dict[str, float]) -> dict:
    recipe = small_recipe([{"type": "test_paragraphs", "name": "plain", "path": str(BOOK)},
                           {"name": "books", "path": str(SHARED_DATA / "prose" / "gutenberg" / "pg26184.txt"),
                            "text_unit": "paragraph", "limit": 200}],
                          steps=[], sharding={"splits": {"train": 1.0}, "mixture": mixture})
    return run(recipe, output=str(out), workers=1, progress=False)


def test_mixture_weights_and_erasure_reach_a_source_that_does_not_stamp(tmp_path: Path) -> None:
    plain = _mixed(tmp_path / "plain", {})
    doubled = _mixed(tmp_path / "doubled", {"plain": 2.0})
    assert plain["tokens_by_source"]["plain"]["tokens"] > 0
    assert doubled["tokens_by_source"]["plain"]["tokens"] == 2 * plain["tokens_by_source"]["plain"]["tokens"]
    assert doubled["tokens_by_source"]["books"]["tokens"] == plain["tokens_by_source"]["books"]["tokens"]
    assert set(read_lineage(tmp_path / "plain")["source_name"].to_pylist()) == {"plain", "books"}
    result = CliRunner().invoke(cli, ["erase", str(tmp_path / "plain"), "--source", "plain"])
    assert result.exit_code == 0, result.output
    assert set(read_lineage(tmp_path / "plain")["source_name"].to_pylist()) == {"books"}
    stats = orjson.loads((tmp_path / "plain" / "stats.json").read_bytes())
    assert stats["tokens_by_source"]["plain"]["tokens"] == 0


# -- the documented way to add a format ----------------------------------------------------------------

SUBTITLES = "1\n00:00:01,000 --> 00:00:03,500\nIt is a truth universally acknowledged,\n\n" \
            "2\n00:00:03,600 --> 00:00:06,000\nthat a single man in possession of a good fortune\n"


def test_the_documented_subtitle_format_is_one_class_picked_by_its_extension(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    from tests.conftest import REPO

    doc = (REPO / "docs" / "ingest.md").read_text(encoding="utf-8")
    section = doc[doc.index("### Input formats"):doc.index("### Archives")]
    module = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pride.srt").write_text(SUBTITLES, encoding="utf-8")
    (tmp_path / "in" / "blank.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\n\n", encoding="utf-8")
    script = module + (
        "\nfrom corpusforge.observe.stats import TaskContext\n"
        "from corpusforge.sources.files import FilesSource\n"
        "import sys, json, pathlib\n"
        "src = FilesSource('subs', sys.argv[1])\n"
        "ctx = TaskContext('curate', 0, pathlib.Path(sys.argv[2]))\n"
        "docs = [d for t in src.plan(1 << 20) for d in src.read(t, ctx)]\n"
        "print(json.dumps([[d.text, d.metadata] for d in docs] + [[q['reason'] for q in ctx.quarantined]]))\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "in"), str(tmp_path / "ctx")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == [
        ["It is a truth universally acknowledged,\nthat a single man in possession of a good fortune",
         {"format": "srt", "source_name": "subs"}],
        ["subtitles have no text"]]
