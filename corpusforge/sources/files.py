"""The ``files`` source: local paths, folders and globs, or any fsspec URL, in any known format."""

from __future__ import annotations

import fnmatch
import io
import posixpath
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Literal

import fsspec
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import CorpusforgeError, CorruptInput
from corpusforge.registry import SOURCES
from corpusforge.sources import readers
from corpusforge.sources.base import Part, Source, TaskInput
from corpusforge.sources.compression import (
    COMPRESSED_SUFFIXES,
    decompressing_reader,
    sniff_compression,
    strip_compression_suffix,
)

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

Format = Literal["auto", "jsonl", "json", "parquet", "csv", "tsv", "text"]
_EXT_FORMAT = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
}


def format_of(path: str) -> str:
    """The reader a file needs, from its name with any compression suffix removed."""
    ext = posixpath.splitext(strip_compression_suffix(path).lower())[1]
    return _EXT_FORMAT.get(ext, "text")


@SOURCES.register("files")
class FilesSource(Source):
    """Files under ``path`` (a file, a folder, a glob, or a list of them; any fsspec URL).

    ``format: auto`` picks the reader from the extension (.jsonl/.ndjson, .json, .parquet, .csv,
    .tsv, anything else is text); compression (gz, zst, bz2, xz) is detected from the bytes.
    ``text_unit`` says what one document is in a text file. Files and folders whose names start
    with a dot are skipped; ``include``/``exclude`` are globs on the path relative to the root.
    """

    def __init__(
        self,
        name: str,
        path: str | list[str],
        format: Format = "auto",
        text_field: str = "text",
        id_field: str | None = None,
        text_unit: Literal["file", "line", "paragraph"] = "file",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        encoding_errors: Literal["quarantine", "replace"] = "quarantine",
        metadata: dict[str, Any] | None = None,
    ):
        self.source_name = name
        self.paths = [path] if isinstance(path, str) else list(path)
        if not self.paths:
            raise ValueError("path: at least one path is required")
        self.format = format
        self.text_field, self.id_field = text_field, id_field
        self.text_unit = text_unit
        self.include, self.exclude = include or [], exclude or []
        self.encoding_errors = encoding_errors
        self.extra_metadata = metadata or {}

    # -- planning --------------------------------------------------------------------------------

    def _wanted(self, rel: str) -> bool:
        if any(part.startswith(".") for part in rel.split("/")):
            return False
        if self.include and not any(fnmatch.fnmatch(rel, pat) for pat in self.include):
            return False
        return not any(fnmatch.fnmatch(rel, pat) for pat in self.exclude)

    def discover(self) -> list[tuple[fsspec.AbstractFileSystem, Part]]:
        """Every input file as a whole-file Part, sorted by its relative key."""
        found: dict[str, tuple[fsspec.AbstractFileSystem, Part]] = {}
        for spec in self.paths:
            fs, root = url_to_fs(spec)
            if _has_glob(root):
                base = root
                while _has_glob(base):
                    base = posixpath.dirname(base)
                entries = fs.glob(root, detail=True)
            elif fs.isdir(root):
                base, entries = root, fs.find(root, detail=True)
            elif fs.exists(root):
                base, entries = posixpath.dirname(root), {root: fs.info(root)}
            else:
                raise CorpusforgeError(f"source {self.source_name!r}: path {spec!r} does not exist")
            for p, info in sorted(entries.items()):
                if info.get("type") == "directory":
                    continue
                rel = posixpath.relpath(p, base) if base else p
                if not self._wanted(rel):
                    continue
                uri = p if _is_local(fs) else fs.unstrip_protocol(p)
                mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0
                mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
                found.setdefault(rel, (fs, Part(uri, key=rel, size=int(info.get("size") or 0), mtime=mtime)))
        if not found:
            raise CorpusforgeError(f"source {self.source_name!r}: no input files under {self.paths}")
        return [found[k] for k in sorted(found)]

    def _format(self, path: str) -> str:
        return format_of(path) if self.format == "auto" else self.format

    def _splittable(self, fs: fsspec.AbstractFileSystem, part: Part) -> bool:
        fmt = self._format(part.path)
        if not (fmt == "jsonl" or (fmt == "text" and self.text_unit == "line")):
            return False
        if part.path.lower().endswith(COMPRESSED_SUFFIXES):
            return False
        with fs.open(part.path, "rb") as fh:
            return sniff_compression(fh.read(8)) is None

    def plan(self, task_bytes: int) -> list[TaskInput]:
        tasks: list[TaskInput] = []
        group: list[Part] = []
        group_bytes = 0

        def flush() -> None:
            nonlocal group, group_bytes
            if group:
                tasks.append(TaskInput(self.source_name, tuple(group)))
            group, group_bytes = [], 0

        for fs, part in self.discover():
            fmt = self._format(part.path)
            if fmt == "parquet" and part.size > task_bytes:
                flush()
                with fs.open(part.path, "rb") as fh:
                    meta = pq.ParquetFile(fh).metadata
                start, acc = 0, 0
                for rg in range(meta.num_row_groups):
                    acc += meta.row_group(rg).total_byte_size
                    if acc >= task_bytes:
                        tasks.append(TaskInput(self.source_name, (_replace(part, start, rg + 1, acc),)))
                        start, acc = rg + 1, 0
                if start < meta.num_row_groups:
                    tasks.append(TaskInput(self.source_name, (_replace(part, start, -1, acc),)))
            elif part.size > task_bytes and self._splittable(fs, part):
                flush()
                for off in range(0, part.size, task_bytes):
                    end = min(off + task_bytes, part.size)
                    tasks.append(TaskInput(self.source_name, (_replace(part, off, end, end - off),)))
            else:
                group.append(part)
                group_bytes += part.size
                if group_bytes >= task_bytes:
                    flush()
        flush()
        return tasks

    # -- reading ---------------------------------------------------------------------------------

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        for part in task.parts:
            try:
                yield from self._read_part(part, ctx)
            except CorruptInput as exc:
                ctx.quarantine(exc.location, exc.reason, exc.raw)
            except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
                ctx.quarantine(part.path, f"cannot open: {exc.strerror or exc}", None)

    def _open(self, part: Part) -> tuple[IO[bytes], IO[bytes], bool]:
        raw = fsspec.open(part.path, "rb").open()
        head = raw.read(8)
        raw.seek(0)
        comp = sniff_compression(head)
        return raw, decompressing_reader(raw, comp), comp is None

    def _read_part(self, part: Part, ctx: TaskContext) -> Iterator[Document]:
        if part.size == 0 and part.start == 0:
            ctx.quarantine(part.path, "empty file", None)
            return
        fmt = self._format(part.path)
        raw, stream, plain = self._open(part)
        q = ctx.quarantine
        try:
            if fmt == "jsonl":
                records = readers.read_jsonl(stream, part.path, q, self.text_field, part.start, part.end)
            elif fmt == "json":
                records = readers.read_json_array(stream, part.path, q, self.text_field)
            elif fmt == "parquet":
                # Parquet needs random access: a compressed Parquet file is decompressed in memory.
                seekable = stream if plain else io.BytesIO(stream.read())
                records = readers.read_parquet(seekable, part.path, q, self.text_field, part.start, part.end)
            elif fmt in ("csv", "tsv"):
                records = readers.read_csv(stream, part.path, q, self.text_field, "\t" if fmt == "tsv" else ",")
            else:
                records = readers.read_text(stream, part.path, q, self.text_unit, self.encoding_errors,
                                            part.start, part.end)
            key = f"{self.source_name}/{part.key}"
            id_field = self.id_field
            extra = self.extra_metadata
            for offset, text, fields in records:
                doc_id = fields.pop(id_field, None) if id_field else None
                if extra:
                    fields = {**extra, **fields}
                fields["source_name"] = self.source_name
                yield Document(
                    text,
                    str(doc_id) if doc_id is not None else make_doc_id(key, offset, text),
                    part.path,
                    offset,
                    fields,
                )
        finally:
            stream.close()
            raw.close()


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def _replace(part: Part, start: int, end: int, size: int) -> Part:
    return Part(part.path, part.key, start, end, size, part.mtime)
