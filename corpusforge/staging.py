"""Documents at rest between stages: Parquet (staging, default) or JSON Lines (for people).

Staged files keep row order, which is what the signatures of corpus-wide steps refer to.
Metadata is stored as one JSON string column because its keys differ from step to step; a
document's media items travel in it (``metadata["media"]``) and come back as ``Document.media``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
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
_BYTES_PER_GROUP = 64 << 20


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
