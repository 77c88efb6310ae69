"""The fused JSONL reader against the record reader, and line blocks across chunk and range edges."""

from __future__ import annotations

import gzip
import io

import orjson
import pytest

from corpusforge import load_recipe
from corpusforge.document import DocIdHasher
from corpusforge.observe.stats import TaskContext
from corpusforge.sources import readers

LINES = [
    b'{"text": "plain", "k": 1}',
    b'{"text": "broken',
    b"[1, 2]",
    b'{"body": "no text"}',
    b'{"text": "bad \xff utf-8"}',
    b"",
    b"   ",
    b'{"text": "crlf line", "m": [1, 2]}\r',
    b'{"text": 5}',
    b'{"text": "caf\\u00e9 \\ud83d\\ude00 na\\u00efve", "n": null}',
    b'{"text": "lone \\ud800 surrogate"}',
    b'{"text": "' + b"long " * 3000 + b'"}',
    b'{"text": "last, no newline"}',
]
DATA = b"\n".join(LINES)


def _both(data: bytes, start: int, end: int) -> tuple[list, list]:
    """Documents and quarantine calls of the fused reader and of read_jsonl plus the id hasher."""
    got: list = []
    for fused in (True, False):
        q: list = []
        quarantine = lambda loc, why, raw, q=q: q.append((loc, why, raw))  # noqa: E731
        stream = io.BytesIO(data)
        if fused:
            docs = [(d.id, d.text, d.source, d.offset, d.metadata) for d in readers.read_jsonl_documents(
                stream, "p.jsonl", quarantine, "text", "src/p.jsonl", "src", start, end)]
        else:
            make_id = DocIdHasher("src/p.jsonl")
            docs = [(make_id(o, t), t, "p.jsonl", o, {**f, "source_name": "src"})
                    for o, t, f in readers.read_jsonl(stream, "p.jsonl", quarantine, "text", start, end)]
        got.append((docs, q))
    return got[0], got[1]


@pytest.mark.parametrize("chunk", [7, 64, 1 << 16])
@pytest.mark.parametrize("start,end", [(0, -1), (0, 120), (120, -1), (57, 200), (200, 16_000)])
def test_fused_reader_gives_the_record_readers_documents_and_quarantine(monkeypatch, chunk, start, end):
    monkeypatch.setattr(readers, "CHUNK", chunk)
    fused, plain = _both(DATA, start, end)
    assert fused == plain
    if (start, end) == (0, -1):
        assert len(fused[0]) == 5
        assert [why.split(":")[0] for _, why, _ in fused[1]] == [
            "malformed JSON", "expected a JSON object, got list", "field 'text' is missing or not a string",
            "invalid UTF-8 at byte 14", "field 'text' is missing or not a string", "malformed JSON"]


def test_split_ranges_together_read_every_line_once(tmp_path):
    """Lines longer than a buffered file's read-ahead: a range must not end at a chunk without a newline."""
    lines = [orjson.dumps({"text": f"doc {i} " + "x" * (7000 + 997 * i)}) for i in range(40)]
    (tmp_path / "long.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    src = load_recipe({"sources": [{"path": str(tmp_path / "long.jsonl")}], "steps": []}).build_sources()[0]
    ctx = TaskContext("t", 0, tmp_path)
    whole = [(d.id, d.offset) for t in src.plan(1 << 40) for d in src.read(t, ctx)]
    tasks = src.plan(50_000)
    assert len(tasks) > 5
    assert [(d.id, d.offset) for t in tasks for d in src.read(t, ctx)] == whole
    assert len(whole) == 40


def test_a_line_longer_than_many_chunks_is_one_record(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 1000)
    text = "word " * 100_000
    data = gzip.compress(orjson.dumps({"text": text}) + b"\n" + orjson.dumps({"text": "next"}))
    from corpusforge.sources.compression import decompressing_reader

    docs = list(readers.read_jsonl_documents(decompressing_reader(io.BytesIO(data), "gzip"), "p.jsonl.gz",
                                             lambda *a: pytest.fail(f"quarantined {a[:2]}"), "text", "s/p", "s"))
    assert [d.text for d in docs] == [text, "next"]
    assert docs[1].offset == len(orjson.dumps({"text": text})) + 1
