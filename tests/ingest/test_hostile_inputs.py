"""Hostile inputs (decompression bombs, damaged and entity-expanding Office files) are quarantined
with their path and reason, through the CLI as a user runs it: exit code 0, the good file beside
them kept exactly, and the run's memory bounded by the expansion limit, not by the bomb."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import orjson
import psutil
import pytest
import yaml
import zstandard

from corpusforge.extract.detect import sniff
from corpusforge.extract.formats import ExtractOptions, extract_document
from tests.conftest import REPO, SHARED_DATA

GOOD_DOCX = SHARED_DATA / "docs" / "textract" / "raw_text.docx"
GOOD_TEXT = (SHARED_DATA / "prose" / "gutenberg" / "pg84.txt").read_bytes().decode("utf-8-sig")
MB = 1 << 20


def _zeros(write, total: int) -> None:
    """Stream ``total`` ASCII zeros through ``write`` in 1 MB pieces: the bomb is never in memory.
    (NUL bytes would be refused from the first 8 KB as a binary file, never reaching the limit.)"""
    block = b"0" * MB
    for _ in range(total // MB):
        write(block)


def _gzip_bomb(path: Path, total: int) -> None:
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=9) as gz:
        _zeros(gz.write, total)


def _zstd_bomb(path: Path, total: int) -> None:
    with open(path, "wb") as fh, zstandard.ZstdCompressor(level=3).stream_writer(fh) as zw:
        _zeros(zw.write, total)


def _cli_run(src: Path, out: Path, **source_options: object) -> tuple[subprocess.CompletedProcess, float]:
    """``corpusforge run`` over ``src`` (no filters, documents written back); returns the process
    and the peak resident memory in MB of it and all its children, sampled every 20 ms."""
    # Folders that are mostly hostile files on purpose: the run must go on, not stop at the quarantine limit.
    recipe = {"name": "hostile", "seed": 1, "max_quarantine_fraction": 1.0,
              "sources": [{"path": str(src), **source_options}], "steps": [],
              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 256, "splits": {"train": 1.0}},
              "output": {"documents": "parquet"}}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "corpusforge.cli", "run", str(path), "--output", str(out),
                             "--workers", "1", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), peak / MB


def _kept(out: Path) -> dict[str, list[str]]:
    from corpusforge.staging import read_documents

    kept: dict[str, list[tuple[int, str]]] = {}
    for part in sorted((out / "documents").glob("*.parquet")):
        for doc in read_documents(part):
            kept.setdefault(Path(doc.source).name, []).append((doc.offset, doc.text))
    return {name: [t for _, t in sorted(docs)] for name, docs in kept.items()}


def _quarantined(out: Path) -> dict[str, list[str]]:
    by_file: dict[str, list[str]] = {}
    for f in (out / "quarantine").rglob("*.jsonl"):
        for line in f.read_bytes().splitlines():
            rec = orjson.loads(line)
            by_file.setdefault(Path(rec["location"].split(" ")[0]).name, []).append(rec["reason"])
    return by_file


@pytest.fixture
def good_folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.txt.gz").write_bytes(gzip.compress(GOOD_TEXT.encode()))
    return src


# -- decompression bombs -----------------------------------------------------------------------


@pytest.mark.parametrize("make, name", [(_gzip_bomb, "bomb.txt.gz"), (_zstd_bomb, "bomb.jsonl.zst")])
def test_a_bomb_past_a_small_limit_is_quarantined_and_the_good_file_kept(tmp_path, good_folder, make, name):
    make(good_folder / name, 300 * MB)
    done, _ = _cli_run(good_folder, tmp_path / "out", expansion_floor_bytes=8 * MB, max_expansion_ratio=20)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _kept(tmp_path / "out") == {"good.txt.gz": [GOOD_TEXT]}
    limit = max(8 * MB, 20 * (good_folder / name).stat().st_size)
    assert _quarantined(tmp_path / "out") == {
        name: [f"expands past {limit} bytes (from {(good_folder / name).stat().st_size} compressed bytes; the limit is "
               "max_expansion_ratio x compressed size, at least expansion_floor_bytes): a decompression bomb?"]}


def test_a_gigabyte_zstd_bomb_at_the_default_limit_keeps_memory_bounded(tmp_path, good_folder):
    _zstd_bomb(good_folder / "bomb.txt.zst", 1024 * MB)  # ~33 KB on disk, 1 GiB of zeros inside
    _gzip_bomb(good_folder / "bomb2.txt.gz", 512 * MB)  # ~0.5 MB on disk
    # Without the document cap (which stops a whole-file read at 8 MiB first, see below).
    done, peak_mb = _cli_run(good_folder, tmp_path / "out", max_document_bytes=None)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _kept(tmp_path / "out") == {"good.txt.gz": [GOOD_TEXT]}
    reasons = _quarantined(tmp_path / "out")
    assert sorted(reasons) == ["bomb.txt.zst", "bomb2.txt.gz"]
    assert all(r == [f"expands past 67108864 bytes (from {(good_folder / n).stat().st_size} compressed bytes; the "
                     "limit is max_expansion_ratio x compressed size, at least expansion_floor_bytes): a decompression "
                     "bomb?"] for n, r in reasons.items()), reasons
    # The same run without the bombs peaks at ~290 MB (driver, forkserver and worker together,
    # the shard stage being the largest); reading either bomb whole would add 0.5-1 GiB.
    print(f"peak RSS of the run with 1 GiB zstd and 512 MiB gzip bombs: {peak_mb:.0f} MB")
    assert peak_mb < 600


_READ_BOMB = """
import sys
from pathlib import Path
from corpusforge.observe.stats import TaskContext, peak_rss_mb
from corpusforge.sources.files import FilesSource
src = FilesSource(name="t", path=sys.argv[1], text_unit=sys.argv[2], max_document_bytes=None)
ctx = TaskContext("curate", 0, Path(sys.argv[3]))
tasks = src.plan(1 << 30)
before = peak_rss_mb()
docs = [d for task in tasks for d in src.read(task, ctx)]
after = peak_rss_mb()
print(len(docs), int(after - before), ctx.quarantined[0]["reason"])
"""


@pytest.mark.parametrize("unit", ["file", "line"])
def test_reading_a_gigabyte_bomb_holds_no_more_than_the_default_limit(tmp_path, unit):
    bomb = tmp_path / "bomb.txt.zst"
    _zstd_bomb(bomb, 1024 * MB)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _READ_BOMB, str(bomb), unit, str(tmp_path / "ctx")],
                          capture_output=True, env=env, check=True)
    n_docs, grown_mb, reason = done.stdout.decode().split(" ", 2)
    print(f"reading a 1 GiB zstd bomb, text_unit {unit}: peak RSS grew {grown_mb} MB")
    assert n_docs == "0" and reason.startswith("expands past 67108864 bytes")
    assert int(grown_mb) < 64 + 40  # the 64 MiB limit, plus the last step and the join


def test_at_the_default_document_cap_a_bomb_read_whole_stops_at_8_mib(tmp_path, good_folder):
    _gzip_bomb(good_folder / "bomb.txt.gz", 256 * MB)
    done, _ = _cli_run(good_folder, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _kept(tmp_path / "out") == {"good.txt.gz": [GOOD_TEXT]}
    assert _quarantined(tmp_path / "out") == {"bomb.txt.gz": ["document too large: over 8,388,608 bytes "
                                                              "(max_document_bytes)"]}


def test_an_expansion_limit_below_one_is_refused_with_the_option_named(tmp_path, good_folder):
    done, _ = _cli_run(good_folder, tmp_path / "out", max_expansion_ratio=0.5)
    assert done.returncode != 0
    assert b"max_expansion_ratio" in done.stderr


def test_a_zstd_stream_cut_inside_a_frame_is_quarantined_not_read_short(tmp_path, good_folder):
    whole = zstandard.ZstdCompressor().compress(GOOD_TEXT.encode())
    (good_folder / "cut.txt.zst").write_bytes(whole[: len(whole) - 100])
    done, _ = _cli_run(good_folder, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _kept(tmp_path / "out") == {"good.txt.gz": [GOOD_TEXT]}
    assert _quarantined(tmp_path / "out") == {
        "cut.txt.zst": ["compressed stream is truncated or corrupt (zstd stream ends inside a frame (truncated))"]}


@pytest.mark.parametrize("name, raw", [
    ("cut.json.gz", orjson.dumps([{"text": GOOD_TEXT}] * 20)),
    ("cut.parquet.bz2", (SHARED_DATA / "docs" / "markitdown" / "test.xlsx").read_bytes()),  # bytes; cut below
    ("cut.csv.xz", b"text\n" + b"".join(b'"%s"\n' % GOOD_TEXT[:5000].replace('"', "'").encode() for _ in range(50))),
])
def test_a_truncated_whole_file_format_is_quarantined_and_the_run_goes_on(tmp_path, good_folder, name, raw):
    import bz2
    import lzma

    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}["." + name.rsplit(".", 1)[1]]
    whole = compress(raw)
    (good_folder / name).write_bytes(whole[: len(whole) // 2])
    done, _ = _cli_run(good_folder, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _kept(tmp_path / "out").get("good.txt.gz") == [GOOD_TEXT]
    [reason] = _quarantined(tmp_path / "out")[name]
    assert reason.startswith(("compressed stream is truncated or corrupt", "stream is truncated or corrupt"))


# -- hostile Office files ----------------------------------------------------------------------


def _rezip(src: Path, dest: Path, replace: dict[str, bytes | None]) -> None:
    """Copy a real Office file with some members replaced (bytes, or None to stream the member
    from ``_STREAMED``), compressed at level 9."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info in zin.infolist():
            if info.filename in replace:
                data = replace[info.filename]
                if data is None:
                    with zout.open(info.filename, "w", force_zip64=True) as member:
                        _STREAMED[info.filename](member.write)
                else:
                    zout.writestr(info.filename, data)
            else:
                zout.writestr(info, zin.read(info.filename))


def _huge_sheet(write) -> None:
    """A worksheet of 400 MB of repeated cells, streamed."""
    write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
          b'spreadsheetml/2006/main"><sheetData>')
    row = b'<row>' + b'<c t="n"><v>1</v></c>' * 1000 + b'</row>'
    for _ in range(400 * MB // len(row)):
        write(row)
    write(b"</sheetData></worksheet>")


_STREAMED = {"xl/worksheets/sheet1.xml": _huge_sheet}

_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
           + b']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
           b"<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>")


def _hostile_office(src: Path) -> None:
    document = zipfile.ZipFile(GOOD_DOCX).read("word/document.xml")
    _rezip(GOOD_DOCX, src / "truncated.docx", {"word/document.xml": document[: len(document) // 2]})
    _rezip(GOOD_DOCX, src / "laughs.docx", {"word/document.xml": _LAUGHS})
    node = (b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            b"<w:body><w:p><w:r><w:t>" + b"a" * (50 * MB) + b"</w:t></w:r></w:p></w:body></w:document>")
    _rezip(GOOD_DOCX, src / "hugenode.docx", {"word/document.xml": node})
    _rezip(SHARED_DATA / "docs" / "markitdown" / "test.xlsx", src / "bomb.xlsx", {"xl/worksheets/sheet1.xml": None})
    with zipfile.ZipFile(SHARED_DATA / "docs" / "python-pptx" / "tbl-cell.pptx") as z:
        slide = next(n for n in z.namelist() if n.startswith("ppt/slides/slide") and n.endswith(".xml"))
        data = z.read(slide)
    _rezip(SHARED_DATA / "docs" / "python-pptx" / "tbl-cell.pptx", src / "truncated.pptx", {slide: data[: len(data) // 3]})
    raw = (SHARED_DATA / "docs" / "markitdown" / "test.xlsx").read_bytes()
    (src / "cut.xlsx").write_bytes(raw[: len(raw) // 2])  # the ZIP itself cut short: no central directory


def test_hostile_office_files_are_quarantined_one_entry_each_and_the_run_goes_on(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.docx").write_bytes(GOOD_DOCX.read_bytes())
    _hostile_office(src)
    expected = extract_document(GOOD_DOCX.read_bytes(), sniff(GOOD_DOCX.read_bytes()[:8192], "good.docx",
                                GOOD_DOCX.read_bytes()), "good.docx", ExtractOptions()).text
    done, peak_mb = _cli_run(src, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _kept(tmp_path / "out") == {"good.docx": [expected]}
    reasons = _quarantined(tmp_path / "out")
    assert sorted(reasons) == ["bomb.xlsx", "cut.xlsx", "hugenode.docx", "laughs.docx", "truncated.docx", "truncated.pptx"]
    assert all(len(r) == 1 for r in reasons.values()), reasons
    assert reasons["laughs.docx"] == ["DOCX part word/document.xml declares a DTD (refused: entity expansion)"]
    limit = max(64 * MB, 100 * (src / "bomb.xlsx").stat().st_size)
    assert reasons["bomb.xlsx"][0].startswith(f"XLSX expands past {limit} bytes")
    assert reasons["bomb.xlsx"][0].endswith("its members declare 419445560 bytes")
    assert reasons["truncated.docx"][0].startswith("unreadable DOCX (XMLSyntaxError: ")
    assert reasons["truncated.pptx"][0].startswith("unreadable PPTX (XMLSyntaxError: ")
    assert reasons["hugenode.docx"][0].startswith("unreadable DOCX (XMLSyntaxError: ")
    assert "huge text node" in reasons["hugenode.docx"][0] or "Text node too long" in reasons["hugenode.docx"][0]
    assert reasons["cut.xlsx"][0].startswith("unreadable XLSX (BadZipFile: ")
    print(f"peak RSS of the run with the hostile Office files: {peak_mb:.0f} MB")
    assert peak_mb < 900


def test_a_member_declaring_a_small_size_cannot_smuggle_more_bytes_past_the_check():
    """A member header patched to declare 1,000 bytes over 20 MB of deflated zeros: zipfile stops
    at the declared size, the checksum then fails, and the container is refused before any parser."""
    from corpusforge.extract.base import ExtractionError
    from corpusforge.extract.office import check_container

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<a>" + b"0" * (20 * MB) + b"</a>")
    raw = bytearray(buf.getvalue())
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (1000).to_bytes(4, "little")  # uncompressed size, central directory
    raw[22:26] = (1000).to_bytes(4, "little")  # and the local header
    with pytest.raises(ExtractionError, match=r"^unreadable XLSX \(xl/worksheets/sheet1.xml: BadZipFile: Bad CRC-32"):
        check_container(bytes(raw), "XLSX", 1 * MB, len(raw))


def test_declared_sizes_past_the_limit_are_refused_before_inflating():
    from corpusforge.extract.base import ExtractionError
    from corpusforge.extract.office import check_container

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<a>" + b"0" * (20 * MB) + b"</a>")
    with pytest.raises(ExtractionError, match=r"^XLSX expands past 1048576 bytes .*; its members declare 20971527 bytes$"):
        check_container(buf.getvalue(), "XLSX", 1 * MB, len(buf.getvalue()))


# -- empty, truncated and many small files ---------------------------------------------------------


def test_zero_byte_compressed_files_are_quarantined_as_empty_and_the_good_file_kept(tmp_path, good_folder):
    for name in ("zero.jsonl.gz", "zero.txt.zst", "zero.jsonl.bz2", "zero.txt.xz"):
        (good_folder / name).write_bytes(b"")
    done, _ = _cli_run(good_folder, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _kept(tmp_path / "out") == {"good.txt.gz": [GOOD_TEXT]}
    assert _quarantined(tmp_path / "out") == {name: ["empty file"] for name in
                                               ("zero.jsonl.gz", "zero.txt.zst", "zero.jsonl.bz2", "zero.txt.xz")}


@pytest.mark.parametrize("suffix", [".gz", ".zst", ".bz2", ".xz"])
def test_a_truncated_compressed_jsonl_split_into_tasks_keeps_every_record_before_the_cut(tmp_path, suffix):
    """Cut in half and read as several decompress-and-skip tasks: the records before the damage
    are kept, each once; the damage is quarantined, with no traceback from a task past it."""
    import bz2
    import lzma

    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.files import FilesSource

    compress = {".gz": gzip.compress, ".zst": zstandard.ZstdCompressor().compress, ".bz2": bz2.compress,
                ".xz": lzma.compress}[suffix]
    paras = [p for p in GOOD_TEXT.split("\n\n") if p.strip()]
    lines = [orjson.dumps({"text": f"{i} {p}"}) + b"\n" for i, p in enumerate(paras * 8)]  # bz2: 4 blocks
    whole = compress(b"".join(lines))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / f"cut.jsonl{suffix}").write_bytes(whole[: len(whole) // 2])
    src = FilesSource("s", str(tmp_path / "in"))
    tasks = src.plan(300_000)
    assert len(tasks) > 1
    ctx = TaskContext("curate", 0, tmp_path)
    texts = [d.text for t in tasks for d in src.read(t, ctx)]
    expected = [orjson.loads(line)["text"] for line in lines]
    assert 0 < len(texts) < len(expected) and texts == expected[: len(texts)]
    assert ctx.quarantined and all(q["reason"].startswith("compressed stream is truncated or corrupt")
                                   for q in ctx.quarantined)


def test_twenty_thousand_tiny_files_are_all_read_in_few_tasks(tmp_path):
    from corpusforge import run

    root = tmp_path / "in"
    for k in range(200):
        (root / f"d{k:03d}").mkdir(parents=True)
        for j in range(100):
            (root / f"d{k:03d}" / f"f{j:03d}.txt").write_text(f"tiny file {k} {j} says hello\n")
    recipe = {"name": "tiny", "seed": 1, "sources": [{"path": str(root)}], "steps": [],
              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 64, "splits": {"train": 1.0}}}
    stats = run(recipe, output=tmp_path / "out", workers=1, progress=False)
    assert stats["documents"]["read"] == stats["documents"]["kept"] == 20_000
    assert stats["documents"]["quarantined"] == 0
    assert next(s for s in stats["stages"] if s["name"] == "curate")["tasks"] <= 2
