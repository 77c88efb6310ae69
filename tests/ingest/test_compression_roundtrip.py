"""Every input format the files source reads, in every compression it reads, comes back from a
real run character for character: same texts, same number of documents, nothing quarantined.

One run (module fixture) reads all the files; each case checks its own file's documents in
``documents/``. The texts are megabytes of real prose, far past every read step (64 KB line
blocks, 128 KB zstd input, 1 MB whole-file read steps), so a reader that stops after one step
or mishandles a boundary shows here.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import html
import io
import lzma
import shutil
from collections import defaultdict
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from corpusforge import run
from corpusforge.extract.formats import ExtractOptions, extract_document
from corpusforge.extract.markup import markdown_to_text, rst_to_text, xml_to_text
from corpusforge.staging import read_documents
from tests.conftest import SHARED_DATA, small_recipe

COMPRESSIONS = {
    "none": ("", lambda b: b),
    "gzip": (".gz", lambda b: gzip.compress(b, compresslevel=6)),
    "zstd": (".zst", lambda b: zstandard.ZstdCompressor(level=3).compress(b)),
    "bz2": (".bz2", lambda b: bz2.compress(b, compresslevel=9)),
    "xz": (".xz", lambda b: lzma.compress(b, preset=1)),
}
BIG = 2_500_000  # characters of prose for plain text, the reader most users hit
MID = 1_200_000  # for the other formats (HTML extraction alone takes ~1 s per MB)


def _prose(n: int) -> str:
    """Real prose: the Gutenberg books and Tiny Shakespeare in shared/data, repeated up to n characters."""
    books = sorted((SHARED_DATA / "prose").rglob("*.txt"))
    text = "\n\n".join(p.read_bytes().decode("utf-8-sig").replace("\r\n", "\n") for p in books)
    return (text * (n // len(text) + 1))[:n].rstrip() + "\n"


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in text.split("\n\n") if p.strip()]


def _lines(raw: bytes) -> list[str]:
    return [line.rstrip(b"\r").decode() for line in raw.split(b"\n") if line.strip()]


def _paragraph_unit(raw: bytes) -> list[str]:
    out, para = [], []
    for line in raw.split(b"\n"):
        if line.strip():
            para.append(line.rstrip(b"\r"))
        elif para:
            out.append(b"\n".join(para).decode())
            para = []
    if para:
        out.append(b"\n".join(para).decode())
    return out


def _csv(rows: list[str], delimiter: str) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["n", "text"])
    writer.writerows([i, t] for i, t in enumerate(rows))
    return buf.getvalue().encode()


def _parquet(rows: list[str]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": rows, "n": list(range(len(rows)))}), buf, row_group_size=500)
    return buf.getvalue()


def _code() -> str:
    """Python sources from the code corpus, concatenated to about MID characters."""
    parts, size = [], 0
    for line in (SHARED_DATA / "code" / "code.jsonl").read_bytes().splitlines():
        rec = orjson.loads(line)
        if rec.get("path", "").endswith(".py") and size < MID:
            parts.append(rec["text"])
            size += len(rec["text"])
    assert size > 500_000, "the code corpus should hold real Python sources"
    return "\n\n".join(parts)


def _extracted(raw: bytes, name: str) -> str:
    """What extraction makes of the plain file: the text every compressed copy must give too."""
    from corpusforge.extract.detect import sniff

    return extract_document(raw, sniff(raw[:8192], name, raw), name, ExtractOptions()).text


def _cases() -> dict[str, tuple[str, bytes, list[str] | None]]:
    """name -> (source folder, plain bytes, expected texts in order; None: as the plain file reads)."""
    big, mid = _prose(BIG), _prose(MID)
    paras = _paragraphs(mid)
    md = "# The books\n\n" + "\n\n".join(f"## Part {i}\n\n{p}" if i % 50 == 0 else p for i, p in enumerate(paras))
    rst = "The books\n=========\n\n" + mid
    page = ("<!doctype html><html><head><title>Books</title></head><body><article>"
            + "".join(f"<p>{html.escape(p)}</p>" for p in _paragraphs(_prose(800_000))) + "</article></body></html>")
    xml = "<?xml version='1.0' encoding='utf-8'?><book>" + "".join(f"<p>{html.escape(p)}</p>" for p in paras) + "</book>"
    code = _code()
    docs = SHARED_DATA / "docs"
    warc = gzip.decompress((SHARED_DATA / "warc" / "dolma" / "sample-0000.warc.gz").read_bytes())
    cases: dict[str, tuple[str, bytes, list[str] | None]] = {
        "prose.txt": ("file", big.encode(), [big]),
        "lines.txt": ("line", big.encode(), _lines(big.encode())),
        "paras.txt": ("paragraph", big.encode(), _paragraph_unit(big.encode())),
        "book.md": ("auto", md.encode(), [markdown_to_text(md)]),
        "book.rst": ("auto", rst.encode(), [rst_to_text(rst)]),
        "records.json": ("auto", orjson.dumps([{"text": p, "n": i} for i, p in enumerate(paras)]), paras),
        "records.jsonl": ("auto", b"".join(orjson.dumps({"text": p, "n": i}) + b"\n" for i, p in enumerate(paras)), paras),
        "records.csv": ("auto", _csv(paras, ","), paras),
        "records.tsv": ("auto", _csv(paras, "\t"), paras),
        "records.parquet": ("auto", _parquet(paras), paras),
        "page.html": ("auto", page.encode(), None),
        "book.xml": ("auto", xml.encode(), [xml_to_text(xml.encode())]),
        "module.py": ("auto", code.encode(), [code]),
        "report.docx": ("auto", (docs / "markitdown" / "test.docx").read_bytes(), None),
        "slides.pptx": ("auto", (docs / "markitdown" / "test.pptx").read_bytes(), None),
        "sheet.xlsx": ("auto", (docs / "markitdown" / "test.xlsx").read_bytes(), None),
        "paper.pdf": ("auto", (docs / "markitdown" / "test.pdf").read_bytes(), None),
        "book.epub": ("auto", (docs / "textract" / "raw_text.epub").read_bytes(), None),
        "note.odt": ("auto", (docs / "textract" / "raw_text.odt").read_bytes(), None),
        "crawl.warc": ("auto", warc, None),
    }
    for name in ("page.html", "report.docx", "slides.pptx", "sheet.xlsx", "paper.pdf", "book.epub", "note.odt"):
        unit, raw, _ = cases[name]
        cases[name] = (unit, raw, [_extracted(raw, name)])
    return cases


def _case_names() -> list[str]:
    return ["prose.txt", "lines.txt", "paras.txt", "book.md", "book.rst", "records.json", "records.jsonl",
            "records.csv", "records.tsv", "records.parquet", "page.html", "book.xml", "module.py",
            "report.docx", "slides.pptx", "sheet.xlsx", "paper.pdf", "book.epub", "note.odt", "crawl.warc"]


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run over every case in every compression: texts per input file, stats, quarantine."""
    root = tmp_path_factory.mktemp("roundtrip")
    cases = _cases()
    assert sorted(cases) == sorted(_case_names())
    units = {"file", "line", "paragraph", "auto"}
    for unit in units:
        (root / unit).mkdir()
    files: dict[tuple[str, str], Path] = {}
    for name, (unit, raw, _) in cases.items():
        for comp, (suffix, compress) in COMPRESSIONS.items():
            stem, ext = name.rsplit(".", 1)
            path = root / unit / f"{stem}-{comp}.{ext}{suffix}"
            path.write_bytes(compress(raw))
            files[name, comp] = path
    sources = [{"name": unit, "path": str(root / unit), **({"text_unit": unit} if unit != "auto" else {})}
               for unit in sorted(units)]
    out = root / "out"
    recipe = small_recipe(sources, steps=[], output={"documents": "parquet"},
                          tokenizer={"vocab_size": 2000, "sample_bytes": 2_000_000},
                          sharding={"sequence_length": 2048, "max_shard_bytes": 50_000_000, "splits": {"train": 1.0}},
                          executor={"task_bytes": 4_000_000})
    stats = run(recipe, output=str(out), workers=1)
    texts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for part in sorted((out / "documents").glob("*.parquet")):
        for doc in read_documents(part):
            texts[doc.source].append((doc.offset, doc.text))
    quarantined = [orjson.loads(line) for f in (out / "quarantine").rglob("*.jsonl") for line in f.read_bytes().splitlines()]
    plain_reads = {name: [t for _, t in sorted(texts[str(files[name, "none"])])] for name in cases}
    yield {"cases": cases, "files": files, "texts": texts, "stats": stats, "quarantined": quarantined,
           "plain": plain_reads}
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("compression", list(COMPRESSIONS))
@pytest.mark.parametrize("name", _case_names())
def test_every_format_in_every_compression_reads_back_exactly(roundtrip: dict, name: str, compression: str) -> None:
    _, raw, expected = roundtrip["cases"][name]
    path = roundtrip["files"][name, compression]
    got = [text for _, text in sorted(roundtrip["texts"][str(path)])]
    assert not [q for q in roundtrip["quarantined"] if q["location"].startswith(str(path))]
    if expected is None:  # a WARC: every record the plain archive gives, none lost to compression
        expected = roundtrip["plain"][name]
        assert len(expected) >= 5
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"{path.name} document {i}: {len(g)} characters read, {len(e)} expected"


def test_the_roundtrip_run_quarantines_nothing_and_reads_every_document(roundtrip: dict) -> None:
    expected = sum(len(e) if e is not None else len(roundtrip["plain"][n])
                   for n, (_, _, e) in roundtrip["cases"].items()) * len(COMPRESSIONS)
    assert roundtrip["quarantined"] == []
    assert roundtrip["stats"]["documents"] == {"read": expected, "kept": expected, "quarantined": 0}
