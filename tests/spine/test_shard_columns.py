"""The shard stage's columnar path (staged documents read as Arrow columns) against the per-Document one."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from pathlib import Path

import numpy as np
import orjson
import pytest

from corpusforge import Document, run
from corpusforge.observe.histogram import LENGTH_EDGES, LengthHistogram
from corpusforge.pipeline import Pipeline
from corpusforge.shards.packer import Packer, flat_ids, frame_flat
from corpusforge.staging import DocumentWriter, read_document_columns, read_documents
from tests.conftest import small_recipe


def _file_hashes(out: Path) -> dict[str, str]:
    """sha256 of every shard, lineage and index file (not stats or reports, which hold timings)."""
    keep = ("shard_index.json",)
    files = [p for p in sorted(out.rglob("*")) if p.is_file() and (
        p.suffix in (".safetensors", ".parquet", ".npy", ".bin", ".idx", ".zst") or p.name in keep)
        and "_state" not in p.parts and "curate" not in p.parts]
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _counts(out: Path) -> dict:
    """stats.json without its timings and memory figures."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if not any(w in k for w in ("seconds", "rss", "_s", "per_s"))}
        return [strip(v) for v in x] if isinstance(x, list) else x
    return strip(orjson.loads((out / "stats.json").read_bytes()))


@pytest.mark.parametrize("steps,sharding", [
    (None, {"splits": {"train": 0.8, "val": 0.1, "test": 0.1}, "mixture": {"wikitext": 1.5},
            "encode_batch_bytes": 20_000}),
    ([], {"splits": {"train": 1.0}, "packing": "pad", "document_ids": True, "position_ids": True,
          "max_records": {"prose": 300}}),
])  # fmt: skip
def test_columnar_shard_stage_writes_the_same_bytes_as_the_document_path(tmp_path, shared_data, monkeypatch, steps,
                                                                          sharding):
    """Default steps (exact dedup last: rows dropped while reading) and no steps (the staged file as is)."""
    sources = [
        {"name": "prose", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"},
        {"name": "wikitext", "path": str(shared_data / "wikitext-2" / "valid.txt"), "text_unit": "paragraph"},
    ]
    recipe = small_recipe(sources, sharding=sharding, executor={"task_bytes": 400_000}, output={"audit": True},
                          **({"steps": steps} if steps is not None else {}))
    used = []
    columns = Pipeline.final_columns
    monkeypatch.setattr(Pipeline, "final_columns", lambda self, *a: used.append(1) or columns(self, *a))
    run(recipe, output=str(tmp_path / "columns"), workers=1)
    assert used
    monkeypatch.setattr(Pipeline, "final_columns", lambda self, *a: None)
    run(recipe, output=str(tmp_path / "documents"), workers=1)
    a, b = _file_hashes(tmp_path / "columns"), _file_hashes(tmp_path / "documents")
    assert a == b
    assert any("audit" in k for k in a) == (steps is None)  # dedup drops are audited
    assert _counts(tmp_path / "columns") == _counts(tmp_path / "documents")
    assert sum(k.startswith("lineage/") for k in a) >= 1 and sum(k.endswith(".safetensors") for k in a) > 1


def test_column_batches_cut_and_carry_documents_as_the_document_loop_does(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "staged.parquet"
    w = DocumentWriter(path)
    for i in range(9000):  # > one 4096-row read batch, so batches span read batches
        meta = {"source_name": f"s{i % 3}", **({"language": "de"} if i % 5 == 0 else {})}
        w.write(Document("é€" * int(rng.integers(0, 40)), f"id{i}", f"src{i % 7}", i, meta))
    w.close()
    docs = list(read_documents(path))
    for limit in (1, 1000, 37_777, 10**9):
        expected, cur, size = [], [], 0
        for d in docs:
            cur.append(d)
            size += len(d.text)
            if size >= limit:
                expected.append(cur)
                cur, size = [], 0
        expected += [cur] if cur else []
        got = list(read_document_columns(path, limit))
        assert [len(c.texts) for c in got] == [len(b) for b in expected], limit
        for c, batch in zip(got, expected, strict=True):
            assert c.texts == [d.text for d in batch]
            assert c.chars.tolist() == [len(d.text) for d in batch]
            assert c.docs["id"].to_pylist() == [d.id for d in batch]
            assert c.docs["source"].to_pylist() == [d.source for d in batch]
            assert c.docs["offset"].to_pylist() == [d.offset for d in batch]
            assert [c.metas[k] for k in c.meta_index.tolist()] == [d.metadata for d in batch]


def test_vectorised_framing_and_histogram_match_the_per_document_ones():
    ids = [[5, 6, 7], [], [8], list(range(10, 400))]
    lengths = np.array([len(x) for x in ids])
    reference = [t for x in ids for t in (2, *x, 3)]  # BOS=2, EOS=3 (corpusforge.tokenize.special)
    assert frame_flat(flat_ids(ids, lengths), lengths).tolist() == reference
    assert frame_flat(np.empty(0, np.int32), np.empty(0, np.int64)).tolist() == []
    a, b = Packer(16, "truncate"), Packer(16, "truncate")
    assert a.add_documents(ids).tolist() == b.add_flat(flat_ids(ids, lengths), lengths).tolist()
    assert a.finish().tolist() == b.finish().tolist() and a.truncated_tokens == b.truncated_tokens > 0
    h = LengthHistogram()
    sample = [0, 1, 2, 9, 10, 11, 99, 100, 10**8, 10**9]
    h.add_lengths(np.array(sample))
    expected = [0] * len(LENGTH_EDGES)
    for n in sample:
        expected[bisect_right(LENGTH_EDGES, n) - 1] += 1
    assert h.counts == expected


@pytest.mark.parametrize("chunk", [1, 7, 50, 10**9])
def test_encode_flat_equals_one_encode_batch_at_any_chunk_size(chunk):
    from corpusforge.tokenize.encoder import encode_flat

    class Chars:  # ids = code points: easy to check, and each call's texts are recorded
        calls: list[int] = []

        def encode_batch(self, texts):
            self.calls.append(sum(map(len, texts)))
            return [[ord(ch) for ch in t] for t in texts]

    texts = ["hello", "", "a much longer text of words", "x", "zz" * 40, "end"]
    enc = Chars()
    flat, lengths = encode_flat(enc, texts, chunk)
    assert flat.dtype == np.int32 and flat.tolist() == [ord(ch) for t in texts for ch in t]
    assert lengths.tolist() == [len(t) for t in texts]
    assert sum(enc.calls) == sum(map(len, texts))
    assert all(c < chunk + 80 for c in enc.calls)  # a call closes at the text that reaches chunk
    assert encode_flat(enc, [], chunk)[0].tolist() == []


def test_gather_segments_takes_segments_in_the_given_order():
    from corpusforge.shards.packer import gather_segments

    flat = np.arange(10, dtype=np.int32)  # segments [0,1,2] [3] [] [4..9]
    starts, lengths = np.array([0, 3, 4, 4]), np.array([3, 1, 0, 6])
    order = np.array([3, 0, 0, 2, 1])
    assert gather_segments(flat, starts[order], lengths[order]).tolist() == [4, 5, 6, 7, 8, 9, 0, 1, 2, 0, 1, 2, 3]
