"""Readers users expect from datatrove and NeMo Curator: tar and zip archives of documents (members
streamed, traversal-safe, bounded by the expansion limit), read end to end through the CLI with
the exact texts of real files from ../shared/data."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import orjson
import pytest
import yaml
import zstandard

from tests.conftest import REPO, SHARED_DATA
from tests.ingest.helpers import read_all

PLAY = (SHARED_DATA / "prose" / "tinyshakespeare.txt").read_text("utf-8")[:3000]
BOOK = (SHARED_DATA / "prose" / "gutenberg" / "pg84.txt").read_bytes().decode("utf-8-sig")[:5000]
DOCX = SHARED_DATA / "docs" / "python-docx" / "par-hyperlinks.docx"


def _cli_run(src: Path, out: Path, **source_options: object
             ) -> tuple[subprocess.CompletedProcess, list[tuple[str, str, str]]]:
    """``corpusforge run`` over ``src`` as a user runs it; the kept documents as sorted (uri, id, text)."""
    recipe = {"name": "readers", "seed": 1, "sources": [{"path": str(src), **source_options}], "steps": [],
              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 256, "splits": {"train": 1.0}},
              "output": {"documents": "jsonl"}}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(path), "--output", str(out),
                           "--workers", "1", "--quiet"], capture_output=True, text=True, env=env)
    from corpusforge.staging import read_documents

    docs = [(d.source, d.id, d.text) for p in sorted((out / "documents").glob("*.jsonl*")) for d in read_documents(p)]
    return proc, sorted(docs)


def _quarantine(out: Path) -> dict[str, str]:
    entries = [orjson.loads(line) for p in sorted((out / "quarantine").rglob("*.jsonl"))
               for line in p.read_bytes().splitlines()]
    return {e["location"]: e["reason"] for e in entries}


def _tar_add(tf: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = len(data), kind, link
    tf.addfile(info, io.BytesIO(data) if data else None)


def _tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            _tar_add(tf, name, data)
    return buf.getvalue()


@pytest.mark.parametrize("name,mode", [("docs.tar", "w"), ("docs.tar.gz", "w:gz"), ("docs.tgz", "w:gz"),
                                       ("docs.tar.bz2", "w:bz2"), ("docs.tar.xz", "w:xz")])
def test_tar_members_are_documents_with_their_exact_text(tmp_path: Path, name: str, mode: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / name).write_bytes(_tar_bytes({"a/play.txt": PLAY.encode(), "b/book.txt": BOOK.encode()}, mode))
    docs, quarantined = read_all(src, tmp_path)
    assert {d.source: d.text for d in docs} == {f"{src}/{name}!a/play.txt": PLAY, f"{src}/{name}!b/book.txt": BOOK}
    assert quarantined == []


def test_zstd_tar_is_read_through_the_decompressing_stream(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "docs.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(_tar_bytes({"play.txt": PLAY.encode()})))
    docs, _ = read_all(src, tmp_path)
    assert [(d.source, d.text) for d in docs] == [(f"{src}/docs.tar.zst!play.txt", PLAY)]


def test_archive_members_are_read_by_their_own_format(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    records = b'{"text": "first record", "lang": "en"}\n{"text": "second record", "lang": "fr"}\n'
    with zipfile.ZipFile(src / "mixed.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("r/records.jsonl.gz", __import__("gzip").compress(records))
        zf.writestr("report.docx", DOCX.read_bytes())
        zf.writestr("notes.md", "# Heading\n\nA *markdown* body.\n")
    docs, quarantined = read_all(src, tmp_path)
    got = [(d.source.rsplit("!", 1)[1], d.text, d.metadata.get("lang") or d.metadata.get("format")) for d in docs]
    docx_text = read_all(DOCX, tmp_path)[0][0].text
    assert got == [("r/records.jsonl.gz", "first record", "en"), ("r/records.jsonl.gz", "second record", "fr"),
                   ("report.docx", docx_text, "docx"), ("notes.md", "Heading\n\nA markdown body.", "markdown")]
    assert quarantined == []


def test_office_file_is_still_extracted_as_office_not_as_an_archive(tmp_path: Path) -> None:
    docs, quarantined = read_all(DOCX, tmp_path)
    assert len(docs) == 1 and docs[0].metadata["format"] == "docx" and "!" not in docs[0].source
    assert docs[0].text.startswith("No hyperlinks\n\nOne awesome hyperlink.")
    assert quarantined == []


def test_links_devices_and_escaping_names_are_quarantined_never_followed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    with tarfile.open(src / "hostile.tar", "w") as tf:
        _tar_add(tf, "good.txt", PLAY.encode())
        _tar_add(tf, "sym", kind=tarfile.SYMTYPE, link=str(secret))
        _tar_add(tf, "hard", kind=tarfile.LNKTYPE, link="good.txt")
        _tar_add(tf, "tty", kind=tarfile.CHRTYPE)
        _tar_add(tf, "fifo", kind=tarfile.FIFOTYPE)
        _tar_add(tf, "../up.txt", b"climbs out")
        _tar_add(tf, "/etc/abs.txt", b"absolute")
    docs, quarantined = read_all(src, tmp_path)
    assert [(d.source, d.text) for d in docs] == [(f"{src}/hostile.tar!good.txt", PLAY)]
    where = f"{src}/hostile.tar!"
    assert {q["location"]: q["reason"] for q in quarantined} == {
        where + "sym": f"archive member not read: symbolic link member (to {str(secret)!r}), not followed",
        where + "hard": "archive member not read: hard link member (to 'good.txt'), not followed",
        where + "tty": "archive member not read: device or FIFO member",
        where + "fifo": "archive member not read: device or FIFO member",
        where + "../up.txt": "archive member not read: member path climbs out of the archive (..)",
        where + "/etc/abs.txt": "archive member not read: absolute member path",
    }
    assert not (tmp_path / "up.txt").exists() and not (src / "good.txt").exists()


def test_zip_symlink_member_is_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "links.zip", "w") as zf:
        link = zipfile.ZipInfo("passwd")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("ok.txt", "kept text")
    docs, quarantined = read_all(src, tmp_path)
    assert [d.text for d in docs] == ["kept text"]
    assert quarantined == [{"location": f"{src}/links.zip!passwd",
                            "reason": "archive member not read: symbolic link member, not followed"}]


def test_zip_bomb_member_is_quarantined_and_the_other_members_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("before.txt", PLAY)
        zf.writestr("zeros.txt", b"0" * (3 << 20))
        zf.writestr("after.txt", BOOK)
    docs, quarantined = read_all(src, tmp_path, expansion_floor_bytes=1 << 20)
    assert [d.text for d in docs] == [PLAY, BOOK]
    assert len(quarantined) == 1 and quarantined[0]["location"] == f"{src}/bomb.zip!zeros.txt"
    assert quarantined[0]["reason"].startswith("zip archive expands past 1048576 bytes")
    assert quarantined[0]["reason"].endswith(f"this member declares {3 << 20} bytes")


def test_compressed_tar_bomb_stops_at_the_limit_keeping_members_before_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "bomb.tar.gz").write_bytes(_tar_bytes({"first.txt": PLAY.encode(), "zeros.txt": b"0" * (4 << 20)}, "w:gz"))
    docs, quarantined = read_all(src, tmp_path, expansion_floor_bytes=1 << 20)
    assert [d.text for d in docs] == [PLAY]
    assert [q["location"] for q in quarantined] == [f"{src}/bomb.tar.gz"]
    assert quarantined[0]["reason"].startswith("expands past 1048576 bytes")


def test_hidden_members_are_skipped_like_hidden_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "mac.zip", "w") as zf:
        zf.writestr("doc.txt", "the text")
        zf.writestr("__MACOSX/._doc.txt", "resource fork")
        zf.writestr(".DS_Store", "finder")
    docs, quarantined = read_all(src, tmp_path)
    assert [(d.source, d.text) for d in docs] == [(f"{src}/mac.zip!doc.txt", "the text")]
    assert quarantined == []


def test_damaged_tar_keeps_members_before_the_damage(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    whole = _tar_bytes({"one.txt": PLAY.encode(), "two.txt": BOOK.encode()}, "w:gz")
    (src / "cut.tar.gz").write_bytes(whole[: len(whole) - 900])
    docs, quarantined = read_all(src, tmp_path)
    assert [d.text for d in docs] == [PLAY]
    assert [q["location"] for q in quarantined] == [f"{src}/cut.tar.gz"]
    assert quarantined[0]["reason"].startswith("unreadable tar archive")


def test_archives_through_the_cli_give_every_member_once_with_ids_per_member(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.tar.gz").write_bytes(_tar_bytes({"play.txt": PLAY.encode()}, "w:gz"))
    with zipfile.ZipFile(src / "b.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("book.txt", BOOK)
        zf.writestr("report.docx", DOCX.read_bytes())
    (src / "plain.txt").write_text("a plain file beside the archives")
    proc, docs = _cli_run(src, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    docx_text = read_all(DOCX, tmp_path)[0][0].text
    assert [(uri, text) for uri, _, text in docs] == [
        (f"{src}/a.tar.gz!play.txt", PLAY), (f"{src}/b.zip!book.txt", BOOK), (f"{src}/b.zip!report.docx", docx_text),
        (f"{src}/plain.txt", "a plain file beside the archives")]
    assert len({doc_id for _, doc_id, _ in docs}) == 4
    assert _quarantine(tmp_path / "out") == {}


# -- lz4 inputs ------------------------------------------------------------------------------------

def test_lz4_text_and_jsonl_read_like_their_plain_files(tmp_path: Path) -> None:
    import lz4.frame

    src = tmp_path / "src"
    src.mkdir()
    (src / "book.txt.lz4").write_bytes(lz4.frame.compress(BOOK.encode()))
    lines = b"".join(orjson.dumps({"text": t, "n": i}) + b"\n" for i, t in enumerate(PLAY.split("\n\n")))
    (src / "play.jsonl.lz4").write_bytes(lz4.frame.compress(lines))
    docs, quarantined = read_all(src, tmp_path)
    assert [d.text for d in docs] == [BOOK, *PLAY.split("\n\n")]
    assert [d.metadata.get("n") for d in docs[1:]] == list(range(len(PLAY.split("\n\n"))))
    assert quarantined == []


def test_lz4_is_detected_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    import lz4.frame

    (tmp_path / "notes.txt").write_bytes(lz4.frame.compress(PLAY.encode()))
    docs, _ = read_all(tmp_path / "notes.txt", tmp_path)
    assert [d.text for d in docs] == [PLAY]


def test_truncated_lz4_keeps_the_records_before_the_damage(tmp_path: Path) -> None:
    import lz4.frame

    lines = b"".join(orjson.dumps({"text": f"record {i} " + "x" * 200}) + b"\n" for i in range(2000))
    whole = lz4.frame.compress(lines, block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    (tmp_path / "cut.jsonl.lz4").write_bytes(whole[: len(whole) // 2])
    docs, quarantined = read_all(tmp_path / "cut.jsonl.lz4", tmp_path)
    assert 0 < len(docs) < 2000 and [d.text for d in docs] == [f"record {i} " + "x" * 200 for i in range(len(docs))]
    assert len(quarantined) == 1 and "compressed stream is truncated or corrupt" in quarantined[0]["reason"]


def test_lz4_bomb_is_stopped_at_the_expansion_limit(tmp_path: Path) -> None:
    import lz4.frame

    bomb = tmp_path / "bomb.txt.lz4"
    bomb.write_bytes(lz4.frame.compress(b"0" * (16 << 20)))
    limit = 100 * bomb.stat().st_size  # lz4 packs zeros ~250x: past the default 100x ratio
    docs, quarantined = read_all(bomb, tmp_path, expansion_floor_bytes=1 << 20)
    assert docs == [] and quarantined[0]["reason"].startswith(f"expands past {limit} bytes")


# -- Arrow IPC / Feather -----------------------------------------------------------------------------

def _table():
    import pyarrow as pa

    return pa.table({"id": ["p1", "p2", "p3"], "text": [PLAY, None, BOOK], "lang": ["en", "en", "en"]})


def test_arrow_file_records_take_text_id_and_metadata_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    with pa.ipc.new_file(tmp_path / "t.arrow", _table().schema) as writer:
        for batch in _table().to_batches(max_chunksize=1):
            writer.write_batch(batch)
    docs, quarantined = read_all(tmp_path / "t.arrow", tmp_path, id_field="id")
    assert [(d.id, d.text, d.metadata["lang"]) for d in docs] == [("p1", PLAY, "en"), ("p3", BOOK, "en")]
    assert quarantined == [{"location": f"{tmp_path}/t.arrow row 1", "reason": "column 'text' is null or not text"}]


def test_feather_and_ipc_stream_files_are_read_as_records(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    feather.write_feather(_table(), tmp_path / "t.feather")  # Feather v2, lz4-compressed buffers
    with pa.ipc.new_stream(tmp_path / "t.ipc", _table().schema) as writer:
        writer.write_table(_table())
    for name in ("t.feather", "t.ipc"):
        docs, _ = read_all(tmp_path / name, tmp_path)
        assert [d.text for d in docs] == [PLAY, BOOK], name


def test_compressed_arrow_file_is_read(tmp_path: Path) -> None:
    import pyarrow as pa

    buf = pa.BufferOutputStream()
    with pa.ipc.new_file(buf, _table().schema) as writer:
        writer.write_table(_table())
    (tmp_path / "t.arrow.zst").write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue().to_pybytes()))
    docs, _ = read_all(tmp_path / "t.arrow.zst", tmp_path)
    assert [d.text for d in docs] == [PLAY, BOOK]


def test_arrow_without_the_text_column_names_the_columns(tmp_path: Path) -> None:
    import pyarrow.feather as feather

    feather.write_feather(_table(), tmp_path / "t.feather")
    docs, quarantined = read_all(tmp_path / "t.feather", tmp_path, text_field="body")
    assert docs == [] and quarantined == [{"location": f"{tmp_path}/t.feather",
                                           "reason": "no column 'body'; columns are id, text, lang"}]


def test_lz4_and_arrow_inputs_through_the_cli(tmp_path: Path) -> None:
    import lz4.frame
    import pyarrow.feather as feather

    src = tmp_path / "src"
    src.mkdir()
    (src / "book.txt.lz4").write_bytes(lz4.frame.compress(BOOK.encode()))
    feather.write_feather(_table().slice(0, 1), src / "play.feather")
    proc, docs = _cli_run(src, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert [(uri, text) for uri, _, text in docs] == [(f"{src}/book.txt.lz4", BOOK), (f"{src}/play.feather", PLAY)]


# -- dotted text_field / id_field, CSV options ----------------------------------------------------

def _nested_lines() -> bytes:
    rows = [{"meta": {"id": "a1", "lang": "en"}, "content": {"body": PLAY, "title": "Coriolanus"}},
            {"meta": {"id": "b2", "lang": "en"}, "content": {"body": BOOK}},
            {"meta": {"id": "c3"}, "content": {"title": "no body"}}]
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def test_dotted_text_field_reads_nested_json_lines(tmp_path: Path) -> None:
    (tmp_path / "n.jsonl").write_bytes(_nested_lines())
    docs, quarantined = read_all(tmp_path / "n.jsonl", tmp_path, text_field="content.body")
    assert [d.text for d in docs] == [PLAY, BOOK]
    assert {k: v for k, v in docs[0].metadata.items() if k != "source_name"} == {
        "meta": {"id": "a1", "lang": "en"}, "content": {"title": "Coriolanus"}}
    assert "content" not in docs[1].metadata
    assert quarantined == [{"location": f"{tmp_path}/n.jsonl line 3", "reason": "field 'content.body' is missing or not a string",
                            "raw": _nested_lines().splitlines()[2].decode()}]


def test_dotted_id_field_gives_the_nested_id(tmp_path: Path) -> None:
    (tmp_path / "n.json").write_bytes(orjson.dumps([orjson.loads(x) for x in _nested_lines().splitlines()[:2]]))
    docs, _ = read_all(tmp_path / "n.json", tmp_path, text_field="content.body", id_field="meta.id")
    assert [(d.id, d.text, d.metadata["meta"]) for d in docs] == [("a1", PLAY, {"lang": "en"}), ("b2", BOOK, {"lang": "en"})]


def test_a_key_spelled_with_a_dot_wins_over_the_nested_path(tmp_path: Path) -> None:
    (tmp_path / "k.jsonl").write_bytes(orjson.dumps({"content.body": "flat key", "content": {"body": "nested"}}) + b"\n")
    docs, _ = read_all(tmp_path / "k.jsonl", tmp_path, text_field="content.body")
    assert [d.text for d in docs] == ["flat key"]


def test_csv_delimiter_option_reads_semicolon_files(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text('id;text\n1;"First Citizen: hear me; speak."\n2;plain\n')
    docs, quarantined = read_all(tmp_path / "s.csv", tmp_path, csv_delimiter=";", id_field="id")
    assert [(d.id, d.text) for d in docs] == [("1", "First Citizen: hear me; speak."), ("2", "plain")]
    assert quarantined == []


def test_csv_without_header_names_columns_by_position(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text(f'7,"{PLAY[:200]}",en\n8,second text,fr\n')
    docs, _ = read_all(tmp_path / "h.csv", tmp_path, csv_header=False, text_field="column_1")
    assert [(d.text, d.metadata["column_0"], d.metadata["column_2"]) for d in docs] == [
        (PLAY[:200], "7", "en"), ("second text", "8", "fr")]


def test_csv_columns_name_a_headerless_file_or_replace_a_header(tmp_path: Path) -> None:
    (tmp_path / "h.tsv").write_text("7\tfirst text\n8\tsecond text\n")
    (tmp_path / "r.csv").write_text("A,B\n7,first text\n")
    docs, _ = read_all(tmp_path / "h.tsv", tmp_path, csv_header=False, csv_columns=["n", "body"], text_field="body")
    assert [(d.text, d.metadata["n"]) for d in docs] == [("first text", "7"), ("second text", "8")]
    docs, _ = read_all(tmp_path / "r.csv", tmp_path, csv_columns=["n", "body"], text_field="body")
    assert [(d.text, d.metadata["n"]) for d in docs] == [("first text", "7")]


def test_a_csv_delimiter_longer_than_one_character_is_refused() -> None:
    from corpusforge.sources.files import FilesSource

    with pytest.raises(ValueError, match="csv_delimiter: ';;' must be one character"):
        FilesSource(name="t", path=".", csv_delimiter=";;")


def test_nested_json_and_csv_options_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "n.jsonl").write_bytes(b"\n".join(_nested_lines().splitlines()[:2]) + b"\n")
    (tmp_path / "s.csv").write_text("n;body\n9;semicolon text\n")
    proc, docs = _cli_run(src, tmp_path / "out", text_field="content.body", id_field="meta.id")
    assert proc.returncode == 0, proc.stderr
    assert [(doc_id, text) for _, doc_id, text in docs] == [("a1", PLAY), ("b2", BOOK)]
    proc, docs = _cli_run(tmp_path / "s.csv", tmp_path / "out2", text_field="body", csv_delimiter=";")
    assert proc.returncode == 0, proc.stderr
    assert [text for _, _, text in docs] == ["semicolon text"]


# -- skip / limit ----------------------------------------------------------------------------------

def _numbered(src: Path) -> list[str]:
    """Three files of 40 JSONL records each, "a-0" ... "c-39": 120 documents in a known order."""
    src.mkdir()
    texts = []
    for name in "abc":
        rows = [f"{name}-{i} " + PLAY[i * 20 : i * 20 + 60] for i in range(40)]
        (src / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n" for t in rows))
        texts += rows
    return texts


def test_skip_then_limit_take_documents_in_path_then_file_order(tmp_path: Path) -> None:
    texts = _numbered(tmp_path / "src")
    docs, _ = read_all(tmp_path / "src", tmp_path, skip=35, limit=10)
    assert [d.text for d in docs] == texts[35:45]


def test_skip_and_limit_plan_one_task_whatever_the_task_size(tmp_path: Path) -> None:
    from corpusforge.sources.files import FilesSource

    _numbered(tmp_path / "src")
    src = FilesSource(name="t", path=str(tmp_path / "src"), limit=5)
    assert len(src.plan(100)) == 1 and len(FilesSource(name="t", path=str(tmp_path / "src")).plan(100)) > 3


def test_quarantined_records_do_not_count_towards_the_limit(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_bytes(b'{"text": "one"}\n{"body": "no text"}\nnot json\n{"text": "two"}\n{"text": "three"}\n')
    docs, quarantined = read_all(tmp_path / "q.jsonl", tmp_path, limit=2)
    assert [d.text for d in docs] == ["one", "two"] and len(quarantined) == 2


def test_negative_skip_or_zero_limit_is_refused() -> None:
    from corpusforge.sources.files import FilesSource

    for bad in ({"skip": -1}, {"limit": 0}):
        with pytest.raises(ValueError, match="skip must be 0 or more and limit 1 or more"):
            FilesSource(name="t", path=".", **bad)


def test_skip_and_limit_give_the_same_documents_with_one_or_two_workers(tmp_path: Path) -> None:
    texts = _numbered(tmp_path / "src")
    got = []
    for workers in (1, 2):
        recipe = {"name": "lim", "seed": 1, "steps": [], "tokenizer": {"vocab_size": 300},
                  "sources": [{"path": str(tmp_path / "src"), "skip": 30, "limit": 60}],
                  "sharding": {"sequence_length": 256, "splits": {"train": 1.0}}, "output": {"documents": "jsonl"},
                  "executor": {"task_bytes": 2000}}
        (tmp_path / f"r{workers}.yaml").write_text(yaml.safe_dump(recipe))
        out = tmp_path / f"out{workers}"
        proc = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(tmp_path / f"r{workers}.yaml"),
                               "--output", str(out), "--workers", str(workers), "--quiet"],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 0, proc.stderr
        from corpusforge.staging import read_documents

        got.append(sorted(d.text for p in sorted((out / "documents").glob("*.jsonl*")) for d in read_documents(p)))
    assert got[0] == got[1] == sorted(texts[30:90])


# -- Jupyter notebooks -----------------------------------------------------------------------------

def _python_source() -> str:
    for line in (SHARED_DATA / "code" / "code.jsonl").read_bytes().splitlines():
        rec = orjson.loads(line)
        if rec["language"] == "python" and 200 < len(rec["text"]) < 4000:
            return rec["text"].strip("\n")
    raise AssertionError("no Python file in shared/data/code/code.jsonl")


def _notebook(language: dict | None = None) -> dict:
    code = _python_source()
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": language or {},
            "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Coriolanus\n", "\n", PLAY[:400]]},
                      {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": code.splitlines(True),
                       "outputs": [{"output_type": "stream", "name": "stdout", "text": ["OUTPUT-NOT-KEPT\n"]},
                                   {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}}]},
                      {"cell_type": "code", "metadata": {}, "source": [], "outputs": []},
                      {"cell_type": "markdown", "metadata": {}, "source": "The end."}]}


def test_notebook_is_markdown_text_and_fenced_code_without_outputs(tmp_path: Path) -> None:
    (tmp_path / "n.ipynb").write_bytes(orjson.dumps(_notebook({"kernelspec": {"language": "python", "name": "python3"}})))
    docs, quarantined = read_all(tmp_path / "n.ipynb", tmp_path)
    assert [d.text for d in docs] == [f"# Coriolanus\n\n{PLAY[:400]}\n\n```python\n{_python_source()}\n```\n\nThe end."]
    assert {k: docs[0].metadata[k] for k in ("format", "language", "markdown_cells", "code_cells")} == {
        "format": "notebook", "language": "python", "markdown_cells": 2, "code_cells": 1}
    assert "OUTPUT-NOT-KEPT" not in docs[0].text and quarantined == []


def test_notebook_language_comes_from_its_metadata(tmp_path: Path) -> None:
    (tmp_path / "r.ipynb").write_bytes(orjson.dumps(_notebook({"language_info": {"name": "R"}})))
    docs, _ = read_all(tmp_path / "r.ipynb", tmp_path)
    assert "```r\n" in docs[0].text and docs[0].metadata["language"] == "r"


def test_a_broken_notebook_is_quarantined_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "bad.ipynb").write_text('{"cells": [')
    (tmp_path / "empty.ipynb").write_bytes(orjson.dumps({"cells": [], "metadata": {}}))
    docs, quarantined = read_all(tmp_path, tmp_path / "q")
    assert docs == []
    reasons = {Path(q["location"]).name: q["reason"] for q in quarantined}
    assert reasons["bad.ipynb"].startswith("not a readable Jupyter notebook (invalid JSON")
    assert reasons["empty.ipynb"] == "Jupyter notebook has no text or code cells"


def test_notebooks_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "n.ipynb").write_bytes(orjson.dumps(_notebook()))
    proc, docs = _cli_run(src, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert [(uri, text) for uri, _, text in docs] == [
        (f"{src}/n.ipynb", f"# Coriolanus\n\n{PLAY[:400]}\n\n```python\n{_python_source()}\n```\n\nThe end.")]
