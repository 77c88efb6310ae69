"""The files source still reads what it read before extraction was added, the same way."""

from __future__ import annotations

import bz2
import gzip
import lzma

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from tests.ingest.helpers import read_all

LINES = b'{"text": "alpha", "n": 1}\n{"text": "beta", "n": 2}\n'


def test_jsonl_in_every_compression_reads_the_same(tmp_path):
    variants = {"a.jsonl": LINES, "b.jsonl.gz": gzip.compress(LINES), "c.jsonl.zst": zstandard.compress(LINES),
                "d.jsonl.bz2": bz2.compress(LINES), "e.jsonl.xz": lzma.compress(LINES)}
    for name, raw in variants.items():
        (tmp_path / name).write_bytes(raw)
        docs, quarantined = read_all(tmp_path / name, tmp_path)
        assert [(d.text, d.metadata) for d in docs] == [("alpha", {"n": 1, "source_name": "t"}),
                                                        ("beta", {"n": 2, "source_name": "t"})], name
        assert quarantined == []


def test_parquet_csv_and_text_keep_their_metadata(tmp_path):
    pq.write_table(pa.table({"text": ["p1", None], "k": [1, 2]}), tmp_path / "a.parquet")
    (tmp_path / "b.csv").write_text("text,k\nc1,x\n")
    (tmp_path / "c.txt").write_text("plain words\n")
    docs, quarantined = read_all(tmp_path, tmp_path)
    assert [(d.text, d.metadata) for d in docs] == [
        ("p1", {"k": 1, "source_name": "t"}), ("c1", {"k": "x", "source_name": "t"}),
        ("plain words\n", {"source_name": "t"})]
    assert [q["reason"] for q in quarantined] == ["column 'text' is null or not text"]


def test_damaged_inputs_are_quarantined_with_their_reasons(tmp_path):
    (tmp_path / "bad.jsonl").write_bytes(b'{"text": "ok"}\n{"text": \n{"text": "caf\xe9"}\n')
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(LINES * 50)[:-30])
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    docs, quarantined = read_all(tmp_path, tmp_path)
    reasons = [q["reason"].split(" (")[0].split(":")[0] for q in quarantined]
    assert reasons == ["malformed JSON", "invalid UTF-8 at byte 13", "compressed stream is truncated or corrupt",
                       "empty file"]
    # Every record complete before the cut is kept; the records of the cut stream are in order.
    # A Latin-1 text file is decoded (issue 23), not quarantined.
    *texts, latin = [d.text for d in docs]
    assert latin == "café\n"
    assert texts[0] == "ok" and 2 <= len(texts) - 1 < 100
    assert texts[1:] == (["alpha", "beta"] * 50)[: len(texts) - 1]


def test_text_units_line_and_paragraph(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n\nthree\n")
    docs, _ = read_all(tmp_path / "a.txt", tmp_path, text_unit="line")
    assert [d.text for d in docs] == ["one", "two", "three"]
    docs, _ = read_all(tmp_path / "a.txt", tmp_path, text_unit="paragraph")
    assert [d.text for d in docs] == ["one\ntwo", "three"]


def test_discovery_lists_nested_folders_and_several_paths_sorted_by_relative_key(tmp_path):
    for sub in ("b", "a/deep", "c"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        (tmp_path / "in" / sub / "x.txt").write_text(sub)
    (tmp_path / "in" / "top.txt").write_text("top")
    (tmp_path / "in" / ".hidden").mkdir()
    (tmp_path / "in" / ".hidden" / "h.txt").write_text("hidden")
    from corpusforge.sources.files import FilesSource

    src = FilesSource(name="t", path=[str(tmp_path / "in"), str(tmp_path / "in" / "b" / "x.txt")])
    assert [p.key for _, p in src.discover()] == ["a/deep/x.txt", "b/x.txt", "c/x.txt", "top.txt", "x.txt"]
