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

from corpusforge.document import Document
from corpusforge.state import atomic_path

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


class DocumentWriter:
    """Write documents to ``path`` (.parquet or .jsonl), atomically: the file appears when closed."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.kind = "jsonl" if self.path.name.endswith(".jsonl") else "parquet"
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
        self._bytes = 0
        self.count = 0
        self._fh = open(self._tmp, "wb") if self.kind == "jsonl" else None
        self._pq: pq.ParquetWriter | None = None

    def write(self, doc: Document) -> None:
        self.count += 1
        if self._fh is not None:
            rec = {"id": doc.id, "text": doc.text, "source": doc.source, "offset": doc.offset, "metadata": doc.metadata}
            self._fh.write(_dumps(rec) + b"\n")
            return
        r = self._rows
        r["id"].append(doc.id)
        r["text"].append(doc.text)
        r["source"].append(doc.source)
        r["offset"].append(doc.offset)
        r["metadata"].append(_dumps(doc.metadata).decode())
        self._bytes += len(doc.text)
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
            self._fh.close()
        else:
            self._flush()
            assert self._pq is not None
            self._pq.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
        elif self._pq is not None:
            self._pq.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


def read_documents(path: str | os.PathLike[str]) -> Iterator[Document]:
    """Documents of a staged Parquet (or JSONL) file in row order."""
    path = Path(path)
    if path.name.endswith(".jsonl"):
        with open(path, "rb") as fh:
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
