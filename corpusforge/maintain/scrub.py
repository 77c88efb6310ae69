"""The files beside the shards that hold documents' text or ids, read for erasure and rewritten without them.

- ``documents/part_*.jsonl|parquet`` (``output.documents``): the erased documents' lines go.
- staged documents under ``_work/`` (``curate*/task_*.parquet``): the rows stay, because the removal
  sets of corpus-wide steps refer to rows by number, but their text becomes empty and their
  metadata ``{"erased": true}``.
- ``audit/<stage>/task_*.jsonl.zst``: the records naming an erased document go.
- ``quarantine/<stage>/task_*.jsonl``: the records a predicate picks go (their ``raw`` text or location).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard

from corpusforge.layout import OutputLayout
from corpusforge.staging import jsonl_suffix, open_jsonl_reader, open_jsonl_writer

ERASED_METADATA = orjson.dumps({"erased": True}).decode()


def text_files(output: Path) -> list[Path]:
    """Every file under ``output`` that holds documents with their text: kept and staged documents."""
    layout = OutputLayout(output)
    docs = sorted(p for p in layout.documents.glob("*") if jsonl_suffix(p.name) or p.suffix == ".parquet")
    staged = []
    for p in sorted(layout.work.rglob("*.parquet")):
        if {"id", "text"} <= set(pq.read_schema(p).names):
            staged.append(p)
    return docs + staged


def is_staging(output: Path, path: Path) -> bool:
    """Whether ``path`` is a staged file under ``_work/`` (its rows stay, emptied) rather than kept documents."""
    return OutputLayout(output).is_work(path)


def iter_records(path: Path, columns: tuple[str, ...]) -> Iterator[dict[str, list[Any]]]:
    """Batches of ``columns`` (of ``id``, ``text``, ``source``, ``offset``, ``source_name``) of a documents file."""
    if suffix := jsonl_suffix(path.name):
        batch: dict[str, list[Any]] = {c: [] for c in columns}
        with open_jsonl_reader(path, suffix) as fh:
            for line in fh:
                rec = orjson.loads(line)
                rec["source_name"] = rec.get("metadata", {}).get("source_name", "")
                for c in columns:
                    batch[c].append(rec[c])
        yield batch
        return
    want = [c for c in columns if c != "source_name"] + (["metadata"] if "source_name" in columns else [])
    for b in pq.ParquetFile(path).iter_batches(batch_size=4096, columns=want):
        cols = b.to_pydict()
        if "source_name" in columns:
            cols["source_name"] = [orjson.loads(m).get("source_name", "") for m in cols.pop("metadata")]
        yield cols


def rewrite_documents(path: Path, ids: set[str], tmp: Path, keep_rows: bool) -> int:
    """Write ``path`` to ``tmp`` without the documents in ``ids`` (or, ``keep_rows``, with their text
    emptied); returns how many documents it touched."""
    touched = 0
    if suffix := jsonl_suffix(path.name):  # compressed the same way (.jsonl.gz, .jsonl.zst)
        dst, handles = open_jsonl_writer(tmp, suffix)
        with open_jsonl_reader(path, suffix) as src:
            for line in src:
                rec = orjson.loads(line)
                if rec["id"] in ids:
                    touched += 1
                    if not keep_rows:
                        continue
                    line = orjson.dumps({**rec, "text": "", "metadata": {"erased": True}}) + b"\n"
                dst.write(line)
        for h in handles:
            h.close()
        return touched
    pf = pq.ParquetFile(path)
    with pq.ParquetWriter(tmp, pf.schema_arrow, compression="zstd") as writer:
        for k in range(pf.num_row_groups):
            group = pf.read_row_group(k)
            hit = pc.is_in(group["id"], value_set=pa.array(sorted(ids), pa.string())).to_numpy(zero_copy_only=False)
            touched += int(hit.sum())
            if hit.any() and keep_rows:
                cols = group.to_pydict()
                for i in hit.nonzero()[0]:
                    cols["text"][i] = ""
                    cols["metadata"][i] = ERASED_METADATA
                group = pa.table(cols, schema=group.schema)
            elif hit.any():
                group = group.filter(pa.array(~hit))
            writer.write_table(group, row_group_size=max(1, len(group)))
    return touched


def audit_logs(output: Path) -> list[Path]:
    """The per-task audit logs of the run (not the erasure log beside them)."""
    return sorted(OutputLayout(output).audit.glob("*/task_*.jsonl.zst"))


def rewrite_audit_log(path: Path, ids: set[str], tmp: Path) -> int:
    """Write the zstd JSON-lines log ``path`` to ``tmp`` without records of ``ids``; returns records dropped."""
    lines = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 34).splitlines()
    kept = [line for line in lines if line and orjson.loads(line).get("doc_id") not in ids]
    dropped = sum(1 for line in lines if line) - len(kept)
    if dropped:
        tmp.write_bytes(zstandard.ZstdCompressor(level=3).compress(b"\n".join(kept) + b"\n" if kept else b""))
    return dropped


def audit_log_mentions(path: Path, ids: set[str]) -> bool:
    raw = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 34)
    return any(line and orjson.loads(line).get("doc_id") in ids for line in raw.splitlines())


def quarantine_files(output: Path) -> list[Path]:
    """Every task's quarantine file (``quarantine/<stage>/task_*.jsonl``)."""
    return sorted(OutputLayout(output).quarantine.glob("*/*.jsonl"))


def quarantine_hits(path: Path, pick: Callable[[dict[str, Any]], bool]) -> int:
    """How many records of the quarantine file ``path`` ``pick`` selects."""
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip() and pick(orjson.loads(line)))


def rewrite_quarantine(path: Path, pick: Callable[[dict[str, Any]], bool], tmp: Path) -> None:
    """Write quarantine file ``path`` to ``tmp`` without the records ``pick`` selects."""
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for line in src:
            if line.strip() and not pick(orjson.loads(line)):
                dst.write(line)

