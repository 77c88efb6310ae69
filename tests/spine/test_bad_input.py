"""Bad input is quarantined with file, line and reason; the run completes; good documents are kept."""

from __future__ import annotations

import bz2
import gzip
import lzma

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from corpusforge import run
from corpusforge.staging import read_documents
from tests.conftest import small_recipe

GOOD = [f"Document number {i} talks about rivers, mountains and the long history of the valley." for i in range(6)]


def _jsonl(texts):
    return b"".join(orjson.dumps({"text": t, "n": i}) + b"\n" for i, t in enumerate(texts))


def _kept(out):
    return sorted(d.text for f in (out / "documents").glob("*.parquet") for d in read_documents(f))


def test_bad_records_and_files_are_quarantined_and_good_ones_kept(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jsonl").write_bytes(
        _jsonl(GOOD[:2]) + b'{"text": "broken json\n' + b'{"text": "bad \xff\xfe utf8 here"}\n' + b'{"title": "no text"}\n'
    )
    full = gzip.compress(_jsonl(GOOD[2:4]) + _jsonl(["lost tail " * 30] * 200))
    (src / "b.jsonl.gz").write_bytes(full[: len(full) // 2])  # truncated gzip
    (src / "c.jsonl").write_bytes(b"")
    (src / "d.txt").write_bytes(b"caf\xe9 au lait is latin-1, not utf-8, and this file says so loudly")
    (src / "e.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(_jsonl(GOOD[4:5])))
    (src / "f.jsonl.bz2").write_bytes(bz2.compress(_jsonl(GOOD[5:6])))
    out = tmp_path / "out"
    stats = run(small_recipe([{"path": str(src)}], steps=[{"type": "normalize"}],
                             output={"documents": "parquet"}), output=str(out), workers=1)
    kept = _kept(out)
    for t in GOOD:
        assert t in kept
    q = [orjson.loads(line) for f in (out / "quarantine").rglob("*.jsonl") for line in f.read_bytes().splitlines()]
    by_loc = {r["location"].rsplit("/", 1)[-1]: r["reason"] for r in q}
    assert by_loc["a.jsonl line 3"].startswith("malformed JSON")
    assert by_loc["a.jsonl line 4"] == "invalid UTF-8 at byte 14"
    assert by_loc["a.jsonl line 5"] == "field 'text' is missing or not a string"
    assert any(k.startswith("b.jsonl.gz") and "truncated" in v for k, v in by_loc.items())
    assert by_loc["c.jsonl"] == "empty file"
    assert "d.txt" not in by_loc  # latin-1 is detected and decoded (encoding: auto), not quarantined
    assert "café au lait is latin-1, not utf-8, and this file says so loudly" in kept
    assert stats["documents"]["quarantined"] == len(q) >= 5
    assert "empty file" in stats["quarantine"]


def test_every_compression_and_format_reads_the_same_documents(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    payload = _jsonl(GOOD)
    (src / "plain.jsonl").write_bytes(payload)
    (src / "g.jsonl.gz").write_bytes(gzip.compress(payload))
    (src / "x.jsonl.xz").write_bytes(lzma.compress(payload))
    (src / "z.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(payload))
    pq.write_table(pa.table({"text": GOOD, "n": list(range(6))}), src / "p.parquet")
    (src / "c.csv").write_text("n,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(GOOD)))
    out = tmp_path / "out"
    stats = run(small_recipe([{"path": str(src)}], steps=[{"type": "normalize"}], output={"documents": "parquet"}),
                output=str(out), workers=1)
    assert stats["documents"]["read"] == 6 * 6
    assert _kept(out) == sorted(GOOD * 6)
    assert stats["documents"]["quarantined"] == 0


def test_exact_dedup_keeps_the_first_occurrence_across_files(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "1.jsonl").write_bytes(_jsonl([GOOD[0], GOOD[1]]))
    (src / "2.jsonl").write_bytes(_jsonl([GOOD[0] + "  ", GOOD[2]]))
    out = tmp_path / "out"
    stats = run(small_recipe([{"path": str(src)}], steps=[{"type": "exact_dedup"}], output={"documents": "jsonl"},
                             executor={"task_bytes": 1000}), output=str(out), workers=1)
    docs = [orjson.loads(line) for f in sorted((out / "documents").glob("*.jsonl")) for line in f.read_bytes().splitlines()]
    assert sorted(d["text"] for d in docs) == sorted([GOOD[0], GOOD[1], GOOD[2]])
    kept0 = next(d for d in docs if d["text"] == GOOD[0])
    assert kept0["source"].endswith("1.jsonl")
    shards_stage = next(s for s in stats["stages"] if s["name"] == "shards")
    assert shards_stage["steps"][0]["drops"] == {"exact_duplicate": 1}
