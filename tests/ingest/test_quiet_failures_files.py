"""Issue 23, the files source: crawl text (WET), filesystem oddities and text encodings are read
or quarantined with their path and reason, never dropped in silence or crashing the run."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml
from warcio.warcwriter import WARCWriter

from tests.conftest import REPO, SHARED_DATA
from tests.ingest.helpers import read_all

WIKI = (SHARED_DATA / "wikitext-2" / "test.txt").read_text("utf-8")
PAGES = [
    ("https://example.org/a", "en", "Robert Boulter is an English film , television and theatre actor .\n"),
    ("https://example.org/b", "fr,en", "Café crème à la française — déjà vu.\n"),
]


def _wet(gzip: bool = True) -> bytes:
    """A Common Crawl WET file as CC writes it: a warcinfo record, then one conversion record per page."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gzip)
    writer.write_record(writer.create_warcinfo_record("CC-MAIN-test.warc.wet.gz", {"software": "test"}))
    for i, (uri, lang, text) in enumerate(PAGES):
        headers = {"WARC-Refers-To": f"<urn:uuid:0000000{i}-aaaa-bbbb-cccc-dddddddddddd>",
                   "WARC-Date": "2024-01-02T03:04:05Z",
                   "WARC-Identified-Content-Language": lang}
        rec = writer.create_warc_record(uri, "conversion", payload=io.BytesIO(text.encode("utf-8")),
                                        warc_content_type="text/plain", warc_headers_dict=headers)
        writer.write_record(rec)
    return buf.getvalue()


def _cli_run(tmp_path: Path, src: Path, **source_options: object) -> tuple[subprocess.CompletedProcess, Path]:
    recipe = {"name": "quiet", "seed": 1, "sources": [{"path": str(src), **source_options}], "steps": [],
              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 64, "splits": {"train": 1.0}},
              "output": {"documents": "parquet"}}
    path, out = tmp_path / "recipe.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(path), "--output", str(out),
                           "--workers", "1", "--quiet"], capture_output=True, env=env, timeout=300)
    return proc, out


def _kept(out: Path) -> list[tuple[str, str]]:
    """``(source uri, text)`` of every document the run wrote, sorted."""
    from corpusforge.staging import read_documents

    return sorted((doc.source, doc.text) for part in (out / "documents").glob("*.parquet")
                  for doc in read_documents(part))


def _quarantined(out: Path) -> list[dict]:
    return [orjson.loads(line) for f in sorted((out / "quarantine").rglob("*.jsonl"))
            for line in f.read_bytes().splitlines()]


# -- Common Crawl WET -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CC-MAIN-x.warc.wet.gz", "part.wet.gz", "part.wet", "noext"])
def test_wet_conversion_records_are_documents_with_their_exact_text(tmp_path, name):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_bytes(_wet(gzip=name.endswith(".gz")))
    docs, quarantined = read_all(folder, tmp_path)
    assert quarantined == []
    assert [d.text for d in docs] == [text for _, _, text in PAGES]
    first = docs[0].metadata
    assert first["url"] == "https://example.org/a"
    assert first["warc_type"] == "conversion"
    assert first["warc_date"] == "2024-01-02T03:04:05Z"
    assert first["warc_refers_to"] == "<urn:uuid:00000000-aaaa-bbbb-cccc-dddddddddddd>"
    assert first["warc_identified_content_language"] == "en"
    assert first["warc_record_id"].startswith("<urn:uuid:")


def test_wet_through_the_cli_keeps_every_page_and_counts_the_skipped_warcinfo(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "CC-MAIN-x.warc.wet.gz").write_bytes(_wet())
    proc, out = _cli_run(tmp_path, folder)
    assert proc.returncode == 0, proc.stderr.decode()
    assert [t for _, t in _kept(out)] == sorted(text for _, _, text in PAGES)
    read = orjson.loads((out / "stats.json").read_bytes())["stages"][0]["steps"][0]
    assert read["counts"] == {"warc records skipped: warcinfo record": 1}


def test_skipped_warc_records_are_counted_by_reason(data, tmp_path):
    skipped: list[str] = []
    from corpusforge.extract.warc import read_warc

    with open(data / "warc" / "warcio" / "example.warc.gz", "rb") as fh:
        docs = list(read_warc(fh, "example.warc.gz", lambda *a: None, skipped=skipped.append))
    assert len(docs) == 1
    assert sorted(skipped) == ["request record", "request record", "revisit record", "warcinfo record",
                               "warcinfo record"]


# -- filesystem oddities --------------------------------------------------------------------------

GOOD = {"a.txt": WIKI[:2000], "with space.txt": WIKI[2000:3000], "new\nline.txt": WIKI[3000:4000],
        "real/sub/deep.txt": WIKI[4000:5000]}
ODD = {
    "again": "symlinked folder already read through another path",
    "caf\\xe9.txt": "file name is not valid UTF-8: rename the file to read it",
    "dangling.txt": "dangling symlink (its target 'nowhere' does not exist)",
    "pipe.txt": "not a regular file: a FIFO (named pipe)",
    "real/loop": "symlink loop: links to its own ancestor folder",
    "sock": "not a regular file: a socket",
    "zero.txt": "empty file",
    "self": "symlink loop: Too many levels of symbolic links",
}


def _odd_folder(tmp_path: Path) -> Path:
    """Good text files beside every filesystem oddity: a followed symlinked folder, a second link
    to a folder already read, a loop to an ancestor, a self-link, a dangling link, a FIFO, a
    socket, names with a space, a newline and a Latin-1 byte, and an empty file."""
    import socket

    root, outside = tmp_path / "in", tmp_path / "outside"
    (root / "real" / "sub").mkdir(parents=True)
    outside.mkdir()
    for name, text in GOOD.items():
        (root / name).write_text(text, "utf-8")
    (outside / "o.txt").write_text(WIKI[5000:6000], "utf-8")
    os.symlink(outside, root / "linked")
    os.symlink("real", root / "again")
    os.symlink("..", root / "real" / "loop")
    os.symlink("self", root / "self")
    os.symlink("nowhere", root / "dangling.txt")
    os.mkfifo(root / "pipe.txt")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    sock.close()
    with open(os.fsencode(root) + b"/caf\xe9.txt", "wb") as fh:
        fh.write(b"a file whose name is Latin-1\n")
    (root / "zero.txt").write_bytes(b"")
    return root


def test_every_filesystem_oddity_is_one_quarantine_entry_and_every_good_file_is_read_once(tmp_path):
    root = _odd_folder(tmp_path)
    proc, out = _cli_run(tmp_path, root)
    assert proc.returncode == 0, proc.stderr.decode()
    expected = sorted([(str(root / name), text) for name, text in GOOD.items()]
                      + [(str(root / "linked" / "o.txt"), WIKI[5000:6000])])
    assert _kept(out) == expected
    entries = _quarantined(out)
    got = {rec["location"][len(str(root)) + 1:]: rec["reason"] for rec in entries}
    assert len(entries) == len(ODD)
    assert set(got) == set(ODD)
    for name, reason in ODD.items():
        assert got[name].startswith(reason), (name, got[name])


def test_a_file_that_vanishes_between_listing_and_reading_is_quarantined(tmp_path):
    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.files import FilesSource

    (tmp_path / "in").mkdir()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "in" / name).write_text(f"text of {name}\n")
    src = FilesSource(name="t", path=str(tmp_path / "in"))
    tasks = src.plan(1 << 30)
    (tmp_path / "in" / "a.txt").unlink()
    ctx = TaskContext("curate", 0, tmp_path / "ctx")
    docs = [d.text for t in tasks for d in src.read(t, ctx)]
    assert docs == ["text of b.txt\n"]
    assert ctx.quarantined == [{"location": str(tmp_path / "in" / "a.txt"), "reason": "file vanished after it was listed"}]


def test_a_file_whose_size_changes_between_listing_and_reading_is_quarantined(tmp_path):
    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.files import FilesSource

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("first\n")
    src = FilesSource(name="t", path=str(tmp_path / "in"))
    tasks = src.plan(1 << 30)
    (tmp_path / "in" / "a.txt").write_text("first and more\n")
    ctx = TaskContext("curate", 0, tmp_path / "ctx")
    assert [d for t in tasks for d in src.read(t, ctx)] == []
    assert [q["reason"] for q in ctx.quarantined] == [
        "file changed after it was listed (size 6 -> 15 bytes); run again to read it"]


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, permission bits do not stop reads")
def test_unreadable_file_and_folder_are_quarantined(tmp_path):
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "x.txt").write_text("hidden\n")
    (root / "secret.txt").write_text("secret\n")
    (root / "ok.txt").write_text("ok\n")
    os.chmod(root / "secret.txt", 0)
    os.chmod(root / "locked", 0)
    try:
        docs, quarantined = read_all(root, tmp_path)
    finally:
        os.chmod(root / "locked", 0o755)
    assert [d.text for d in docs] == ["ok\n"]
    assert sorted(q["reason"] for q in quarantined) == ["cannot list folder: permission denied",
                                                        "cannot open: Permission denied"]


# -- encodings ------------------------------------------------------------------------------------

BOOK = (SHARED_DATA / "prose" / "gutenberg" / "pg1342.txt").read_text("utf-8-sig")[20000:26000]  # ’ “ ”
LATIN = "\n".join([line for line in (SHARED_DATA / "wikitext-2" / "test.txt").read_text("utf-8").splitlines()
                   if max(map(ord, line), default=0) in range(128, 256)][:30])  # é, ö, £ ..., all in latin-1


@pytest.mark.parametrize(("codec", "text", "recorded"), [
    ("cp1252", BOOK, "cp1252"),
    ("utf-16", BOOK, "utf-16-le"),
    ("utf-8-sig", BOOK, None),
    ("utf-32", BOOK, "utf-32-le"),
])
def test_text_in_another_encoding_round_trips_exactly(tmp_path, codec, text, recorded):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "book.txt").write_bytes(text.encode(codec))
    docs, quarantined = read_all(tmp_path / "in", tmp_path)
    assert quarantined == []
    assert [d.text for d in docs] == [text]
    assert docs[0].metadata.get("encoding") == recorded


def test_latin1_text_is_decoded_not_quarantined(tmp_path):
    assert any(ord(c) > 127 for c in LATIN)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "wiki.txt").write_bytes(LATIN.encode("latin-1"))
    docs, quarantined = read_all(tmp_path / "in", tmp_path)
    assert quarantined == []
    assert [d.text for d in docs] == [LATIN]


def test_utf16_markdown_with_a_bom_is_extracted_not_called_binary(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.md").write_bytes("# Café\n\nDéjà vu.\n".encode("utf-16"))
    docs, quarantined = read_all(tmp_path / "in", tmp_path)
    assert quarantined == []
    assert [d.text for d in docs] == ["Café\n\nDéjà vu."]
    assert docs[0].metadata["encoding"] == "utf-16-le"


def test_an_explicit_encoding_overrides_detection(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "book.txt").write_bytes(BOOK.encode("utf-16-le"))  # no BOM: NUL bytes everywhere
    docs, quarantined = read_all(tmp_path / "in", tmp_path, encoding="utf-16-le")
    assert quarantined == []
    assert [d.text for d in docs] == [BOOK]


def test_an_explicit_encoding_that_does_not_fit_is_quarantined(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_bytes("naïve\n".encode())
    docs, quarantined = read_all(tmp_path / "in", tmp_path, encoding="ascii")
    assert docs == []
    assert [q["reason"] for q in quarantined] == ["invalid ascii at byte 2"]


def test_an_unknown_encoding_name_is_refused_when_the_source_is_built():
    from corpusforge.sources.files import FilesSource

    with pytest.raises(ValueError, match="encoding: 'klingon' is not a known text encoding"):
        FilesSource(name="t", path=".", encoding="klingon")
