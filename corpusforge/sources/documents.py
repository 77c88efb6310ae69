"""The ``corpusforge`` source: the documents an earlier run wrote, for a tokenize-only run.

A curate-only run (``tokenizer: null``) or a shard run with ``output.documents`` leaves
``documents/part_<task>[_<k>].<jsonl|jsonl.gz|jsonl.zst|parquet>``. This source reads them back with
their ids, text, source, offset and metadata as written, one task per task of that run (all its
parts, in order), so a run with ``steps: []`` packs the same rows as the one-shot run did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from corpusforge.document import Document
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout
from corpusforge.registry import SOURCES
from corpusforge.sources.base import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    Part,
    Source,
    TaskInput,
    check_max_document_bytes,
)

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

_PART = re.compile(r"^part_(\d{6})(?:_\d{4})?\.(jsonl|jsonl\.gz|jsonl\.zst|parquet)$")
_FIELDS = ("id", "text", "source", "offset", "metadata")


@SOURCES.register("corpusforge")
class CorpusforgeDocuments(Source):
    """The documents of an earlier corpusforge output (``path``: the output folder or its
    ``documents/``), ids and metadata kept, one task per task of the run that wrote them."""

    stamps_source_name = False  # a document keeps the source_name of the run that first read it

    hash_inputs = True

    def __init__(self, name: str, path: str, max_document_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES):
        self.source_name = name
        self.max_document_bytes = check_max_document_bytes(max_document_bytes)
        folder = Path(path).expanduser()
        self.output = folder.parent if folder.name == "documents" else folder
        self.paths = [str(self.output)]

    def _parts(self) -> list[Path]:
        folder = OutputLayout(self.output).documents
        files = sorted(p for p in folder.glob("part_*") if _PART.match(p.name)) if folder.is_dir() else []
        if not files:
            raise CorpusforgeError(f"{folder}: no documents (part_*.jsonl[.gz|.zst] or .parquet); the corpusforge "
                                   "source reads the output of a curate-only run or of one with output.documents")
        kinds = {_PART.match(p.name).group(2) for p in files}  # type: ignore[union-attr]
        if len(kinds) > 1:
            raise CorpusforgeError(f"{folder}: documents in several formats ({', '.join(sorted(kinds))}); "
                                   "remove the stale ones or run the curate recipe again with --fresh")
        return files

    def plan(self, task_bytes: int) -> list[TaskInput]:
        """One task per task of the run that wrote the documents (never re-cut by ``task_bytes``):
        a task's rows are packed together, so the same cut gives the same shards."""
        groups: dict[str, list[Part]] = {}
        for p in self._parts():
            st = p.stat()
            task = _PART.match(p.name).group(1)  # type: ignore[union-attr]
            groups.setdefault(task, []).append(Part(str(p.resolve()), f"documents/{p.name}", size=st.st_size,
                                                    mtime=st.st_mtime))
        return [TaskInput(self.source_name, tuple(parts)) for _, parts in sorted(groups.items())]

    def upstream_recipe(self) -> dict[str, Any] | None:
        """The recipe that wrote the documents (its ``recipe.yaml``), or None where there is none."""
        import yaml

        path = OutputLayout(self.output).recipe
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None
        return data if isinstance(data, dict) else None

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        for part in task.parts:
            if part.path.endswith(".parquet"):
                yield from self._read_parquet(part.path, ctx)
            else:
                yield from self._read_jsonl(part.path, ctx)

    def _read_jsonl(self, path: str, ctx: TaskContext) -> Iterator[Document]:
        from corpusforge.staging import jsonl_suffix, open_jsonl_reader

        try:
            with open_jsonl_reader(Path(path), jsonl_suffix(path) or ".jsonl") as fh:
                for n, line in enumerate(fh, 1):
                    doc = _document(line, f"{path} line {n}", ctx)
                    if doc is not None:
                        yield doc
        except (OSError, EOFError) as exc:  # a truncated or corrupt compressed stream: the rest is lost
            ctx.quarantine(path, f"unreadable: {exc}")

    def _read_parquet(self, path: str, ctx: TaskContext) -> Iterator[Document]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            missing = [f for f in _FIELDS if f not in pf.schema_arrow.names]
            if missing:
                ctx.quarantine(path, f"not a corpusforge documents file: columns {missing} are missing")
                return
            for batch in pf.iter_batches(batch_size=4096, columns=list(_FIELDS)):
                cols = batch.to_pydict()
                for i, t, s, o, m in zip(*(cols[f] for f in _FIELDS), strict=True):
                    meta = orjson.loads(m) if isinstance(m, str) else (m or {})
                    yield Document(t, i, s, o, meta, meta.get("media"))
        except (OSError, pa.ArrowException) as exc:
            ctx.quarantine(path, f"unreadable Parquet: {exc}")


def _document(line: bytes, where: str, ctx: TaskContext) -> Document | None:
    """A JSON line as written by ``DocumentWriter``, or None with the line quarantined."""
    try:
        r = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        ctx.quarantine(where, f"invalid JSON: {exc}", line)
        return None
    if not isinstance(r, dict) or not isinstance(r.get("text"), str) or not isinstance(r.get("id"), str):
        ctx.quarantine(where, "not a document: needs string 'id' and 'text'", line)
        return None
    meta = r.get("metadata") or {}
    if not isinstance(meta, dict):
        ctx.quarantine(where, "'metadata' is not an object", line)
        return None
    return Document(r["text"], r["id"], str(r.get("source", "")), int(r.get("offset") or 0), meta, meta.get("media"))
