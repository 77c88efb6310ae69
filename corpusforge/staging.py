"""Documents at rest between stages: Parquet (staging, default) or JSON Lines (for people).

Staged files keep row order, which is what the signatures of corpus-wide steps refer to.
Metadata is stored as one JSON string column because its keys differ from step to step; a
document's media items travel in it (``metadata["media"]``) and come back as ``Document.media``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge import layout as layout_names
from corpusforge.document import Document
from corpusforge.layout import OutputLayout, document_part_name
from corpusforge.state import atomic_path, file_sha256

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.large_string()),
        ("source", pa.string()),
        ("offset", pa.int64()),
        ("metadata", pa.string()),
    ]
)
_ROWS_PER_GROUP = 20_000
# A row group is decoded whole when read, and a stage may read one while it fills another (the
# shard stage with output.documents): 8 MB of text per group bounds both by the group, not 64 MB.
_BYTES_PER_GROUP = 8 << 20


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)


JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")


def jsonl_suffix(name: str) -> str | None:
    """The JSON Lines suffix of a documents file name (``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``), else None."""
    return next((s for s in JSONL_SUFFIXES if name.endswith(s)), None)


class _CountingSink:
    """A binary file that counts the bytes written (compressors report none)."""

    def __init__(self, fh: Any):
        self.fh, self.size = fh, 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return self.fh.write(data)


def open_jsonl_writer(path: Path, suffix: str) -> tuple[Any, list[Any]]:
    """``(writer, handles to close in order)`` for a JSON Lines file, compressed by its suffix.
    The gzip header carries no name and no time, so the same documents give the same bytes."""
    raw = open(path, "wb")
    if suffix == ".jsonl.gz":
        import gzip

        # Level 3: 2.5x faster than 6 for 7% more bytes (prose JSONL; zstd -3 is smaller and faster still).
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=3, mtime=0)
        return gz, [gz, raw]
    if suffix == ".jsonl.zst":
        import zstandard

        zw = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
        return zw, [zw, raw]
    return raw, [raw]


class DocumentWriter:
    """Write documents to ``path`` (.parquet, .jsonl, .jsonl.gz or .jsonl.zst), atomically: the
    file appears when closed. A JSON line is ``{"id", "text", "source", "offset", "metadata"}``
    (datatrove's and Dolma's field names, plus where the document was read); Parquet stores the
    metadata as a JSON string column. ``nbytes``: uncompressed bytes of records written so far."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        suffix = jsonl_suffix(self.path.name)
        self.kind = "jsonl" if suffix else "parquet"
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
        self._bytes = 0
        self.nbytes = 0
        self.count = 0
        self._fh, self._handles = open_jsonl_writer(self._tmp, suffix) if suffix else (None, [])
        self._sink = _CountingSink(self._fh) if self._fh is not None else None
        self._pq: pq.ParquetWriter | None = None

    def write(self, doc: Document) -> None:
        self.write_record(doc.id, doc.text, doc.source, doc.offset, doc.metadata)

    def write_record(self, doc_id: str, text: str, source: str, offset: int, metadata: dict[str, Any]) -> None:
        """``write`` for a document given as its fields (no ``Document`` object): the same bytes."""
        self.count += 1
        if self._sink is not None:
            line = _dumps({"id": doc_id, "text": text, "source": source, "offset": offset, "metadata": metadata})
            self._sink.write(line + b"\n")
            self.nbytes = self._sink.size
            return
        r = self._rows
        meta = _dumps(metadata).decode()
        r["id"].append(doc_id)
        r["text"].append(text)
        r["source"].append(source)
        r["offset"].append(offset)
        r["metadata"].append(meta)
        self._bytes += len(text)
        self.nbytes += len(text) + len(meta) + len(doc_id) + len(source) + 8
        if len(r["id"]) >= _ROWS_PER_GROUP or self._bytes >= _BYTES_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._pq is None:
            self._pq = pq.ParquetWriter(self._tmp, SCHEMA, compression="zstd")
        if self._rows["id"] or self.count == 0:
            self._pq.write_table(pa.table(self._rows, schema=SCHEMA), row_group_size=_ROWS_PER_GROUP)
        self._rows = {name: [] for name in SCHEMA.names}
        self._bytes = 0

    def close(self) -> None:
        if self._fh is not None:
            for h in self._handles:
                h.close()
        else:
            self._flush()
            assert self._pq is not None
            self._pq.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._fh is not None:
            for h in self._handles:
                h.close()
        elif self._pq is not None:
            self._pq.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


class PartedDocumentWriter:
    """A task's documents as parts of about ``part_bytes`` uncompressed bytes each, in
    ``folder`` (``documents/``); every part is written atomically. ``parts`` lists what
    ``close`` wrote: path (relative to the output), documents, bytes and sha256."""

    def __init__(self, folder: Path, task: int, fmt: str, part_bytes: int):
        self.folder, self.task, self.fmt, self.part_bytes = Path(folder), task, fmt, part_bytes
        self.parts: list[dict[str, Any]] = []
        self.count = 0
        self._writer = DocumentWriter(self.folder / document_part_name(task, 0, fmt))

    def write(self, doc: Document) -> tuple[str, int]:
        return self.write_record(doc.id, doc.text, doc.source, doc.offset, doc.metadata)

    def write_record(self, doc_id: str, text: str, source: str, offset: int, metadata: dict[str, Any]
                     ) -> tuple[str, int]:
        """Write one document; returns its part (output-relative path) and row in that part."""
        if self._writer.count and self._writer.nbytes >= self.part_bytes:
            self._next()
        row = self._writer.count
        self._writer.write_record(doc_id, text, source, offset, metadata)
        self.count += 1
        return f"{self.folder.name}/{self._writer.path.name}", row

    def _next(self) -> None:
        self._close_part()
        self._writer = DocumentWriter(self.folder / document_part_name(self.task, len(self.parts), self.fmt))

    def _close_part(self) -> None:
        w = self._writer
        w.close()
        self.parts.append({"path": f"{self.folder.name}/{w.path.name}", "documents": w.count,
                           "bytes": w.path.stat().st_size, "sha256": file_sha256(w.path)})

    def close(self) -> list[dict[str, Any]]:
        self._close_part()
        return self.parts

    def abort(self) -> None:
        self._writer.abort()


DOCUMENTS_INDEX = layout_names.DOCUMENTS_INDEX  # a curate-only output's index (its shard_index.json)
DOCUMENTS_LINEAGE = layout_names.DOCUMENTS_LINEAGE  # a curate-only output's lineage: part and row of every document


def missing_shard_index(output: str | os.PathLike[str]) -> str:
    """The one line a command that needs shards says where ``output`` has no ``shard_index.json``:
    that it is a curate-only output (with where its documents are), or not an output at all."""
    where = str(output).rstrip("/")
    if "://" not in where and OutputLayout(where).documents_index.is_file():
        return (f"{where}: has no shards, it is a curate-only output (tokenizer: null): its documents are in "
                f"{where}/{layout_names.DOCUMENTS}/, listed in {DOCUMENTS_INDEX}; a tokenize-only run over it writes shards")
    return f"{where}/{layout_names.INDEX}: missing (is this a corpusforge output folder?)"


def validate_documents(output: Path) -> tuple[list[str], dict[str, Any]]:
    """``validate`` of a curate-only output: every part listed in ``documents_index.json`` exists
    with its checksum and document count, every document has a string id and text, no part file
    is unlisted, and the totals add up. Returns the faults and a summary."""
    layout = OutputLayout(output)
    index_path = layout.documents_index
    try:
        index = orjson.loads(index_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        return [f"{index_path}: not valid JSON ({exc})"], {}
    faults: list[str] = []
    documents = 0
    for part in index.get("parts", []):
        path = Path(output) / part["path"]
        if not path.is_file():
            faults.append(f"{path}: missing (listed in {DOCUMENTS_INDEX})")
            continue
        if file_sha256(path) != part["sha256"]:
            faults.append(f"{path}: checksum differs from the index")
            continue
        try:
            n = sum(1 for d in read_documents(path) if isinstance(d.id, str) and isinstance(d.text, str))
        except Exception as exc:  # a damaged file: any reader error is the fault to report
            faults.append(f"{path}: unreadable ({exc})")
            continue
        if n != part["documents"]:
            faults.append(f"{path}: {n} documents, the index says {part['documents']}")
        documents += n
    listed = {p["path"] for p in index.get("parts", [])}
    faults += [f"{layout.rel(f)}: part file not in the index" for f in sorted(layout.documents.glob("part_*"))
               if layout.rel(f) not in listed]
    totals = index.get("totals", {})
    if not faults and totals.get("documents") != documents:
        faults.append(f"totals: index says {totals.get('documents')} documents, parts add up to {documents}")
    if not faults and not documents:
        faults.append(f"{index_path}: the output holds no documents; see {layout_names.STATS} for what was read, dropped "
                      "and quarantined")
    return faults, {"parts": len(listed), "documents": documents, "format": index.get("documents_format")}


def write_documents_lineage(output: Path, task: int, columns: dict[str, list[Any]]) -> None:
    """The lineage of a curate-only task, ``lineage/documents/part_000003.parquet``, in the lineage
    schema (``observe/lineage.py``): ``shard`` is the part file, ``row`` the document's row in it,
    the token span empty; ``corpusforge trace`` reads it as it reads a shard run's."""
    from corpusforge.observe.lineage import SCHEMA as LINEAGE_SCHEMA

    n = len(columns["doc_id"])
    table = pa.table({**columns, "token_start": np.zeros(n, np.int32), "token_end": np.zeros(n, np.int32)})
    table = table.select(LINEAGE_SCHEMA.names).cast(LINEAGE_SCHEMA)
    with atomic_path(OutputLayout(output).documents_lineage_part(task)) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_documents(path: str | os.PathLike[str]) -> Iterator[Document]:
    """Documents of a staged Parquet or a JSONL (.jsonl, .jsonl.gz, .jsonl.zst) file in row order."""
    path = Path(path)
    suffix = jsonl_suffix(path.name)
    if suffix:
        with open_jsonl_reader(path, suffix) as fh:
            for line in fh:
                r = orjson.loads(line)
                meta = r["metadata"]
                yield Document(r["text"], r["id"], r["source"], r["offset"], meta, meta.get("media"))
        return
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=4096):
        cols = batch.to_pydict()
        loads = orjson.loads
        for i, t, s, o, m in zip(cols["id"], cols["text"], cols["source"], cols["offset"], cols["metadata"], strict=True):
            meta = loads(m)
            yield Document(t, i, s, o, meta, meta.get("media"))


def open_jsonl_reader(path: Path, suffix: str) -> Any:
    """A binary file of the lines of a documents file, decompressed by its suffix."""
    if suffix == ".jsonl.gz":
        import gzip

        return gzip.open(path, "rb")
    if suffix == ".jsonl.zst":
        import io

        import zstandard

        return io.BufferedReader(zstandard.open(path, "rb"))
    return open(path, "rb")


@dataclass
class DocumentColumns:
    """A batch of staged documents as columns, for stages that need no ``Document`` objects.

    ``docs`` holds the ``id``, ``source`` and ``offset`` columns; document i's metadata is
    ``metas[meta_index[i]]`` (the distinct metadata strings of the file, each parsed once)."""

    texts: list[str]
    chars: np.ndarray  # len(text) of each document (code points, as ``len(str)``)
    docs: pa.Table
    meta_index: np.ndarray
    metas: list[dict[str, Any]]


def read_document_columns(
    path: str | os.PathLike[str], batch_chars: int, removed: dict[int, str] | None = None,
    drop: Callable[[Document, str], None] | None = None,
) -> Iterator[DocumentColumns]:
    """The documents of a staged Parquet file in row order, cut into batches the way a loop over
    ``read_documents`` would: a batch closes once its texts hold ``batch_chars`` characters.

    Rows in ``removed`` (row number: reason) are left out, each handed to ``drop`` as a Document."""
    metas: list[dict[str, Any]] = []
    known: dict[str, int] = {}
    pending: list[pa.RecordBatch] = []
    size = 0
    first = 0  # file row number of the read batch's first row

    def emit(parts: list[pa.RecordBatch]) -> DocumentColumns:
        table = pa.Table.from_batches(parts, schema=parts[0].schema).combine_chunks()
        coded = table["metadata"].combine_chunks().dictionary_encode()
        local = np.array([_meta_slot(m, known, metas) for m in coded.dictionary.to_pylist()], dtype=np.int64)
        return DocumentColumns(
            texts=table["text"].to_pylist(),
            chars=pc.utf8_length(table["text"]).to_numpy().astype(np.int64),
            docs=table.select(["id", "source", "offset"]),
            meta_index=local[coded.indices.to_numpy()] if len(local) else np.zeros(0, np.int64),
            metas=metas,
        )

    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        if removed:
            batch, first = _without_removed(batch, first, removed, drop), first + len(batch)
        chars = pc.utf8_length(batch.column("text")).to_numpy(zero_copy_only=False).astype(np.int64)
        start = 0
        while start < len(batch):
            total = size + np.cumsum(chars[start:])
            cut = int(np.searchsorted(total, batch_chars))  # first row where the batch is full
            if cut == len(total):
                pending.append(batch.slice(start))
                size = int(total[-1])
                break
            yield emit([*pending, batch.slice(start, cut + 1)])
            pending, size, start = [], 0, start + cut + 1
    if pending:
        yield emit(pending)


def _meta_slot(text: str, known: dict[str, int], metas: list[dict[str, Any]]) -> int:
    """Index of the metadata string ``text`` in ``metas``, parsing it the first time it is seen."""
    slot = known.get(text)
    if slot is None:
        slot = known[text] = len(metas)
        metas.append(orjson.loads(text))
    return slot


def _without_removed(batch: pa.RecordBatch, first: int, removed: dict[int, str],
                     drop: Callable[[Document, str], None] | None) -> pa.RecordBatch:
    """``batch`` (file rows ``first``...) without the ``removed`` rows, each passed to ``drop``."""
    gone = sorted(r - first for r in removed if first <= r < first + len(batch))
    if not gone:
        return batch
    if drop is not None:
        for i in gone:
            r = batch.slice(i, 1).to_pylist()[0]
            meta = orjson.loads(r["metadata"])
            drop(Document(r["text"], r["id"], r["source"], r["offset"], meta, meta.get("media")), removed[first + i])
    keep = np.ones(len(batch), dtype=bool)
    keep[gone] = False
    return batch.filter(pa.array(keep))
