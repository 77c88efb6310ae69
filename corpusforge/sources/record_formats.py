"""The built-in records formats: JSON Lines, JSON, Parquet, Arrow IPC, CSV, TSV and plain text.

Each reads one part of a file into ``(offset, text, fields)`` records with the functions of
``readers.py``; ``RecordFormat.read`` turns them into documents (ids, metadata, and with
``media: pass`` the media a record names). JSON Lines and line-unit text are cut into byte
ranges at planning, Parquet into row groups.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, ClassVar

from corpusforge.sources import readers
from corpusforge.sources.input_formats import INPUT_FORMATS, Detect, InputFormat, Split

if TYPE_CHECKING:
    from corpusforge.document import Document
    from corpusforge.extract.detect import Kind
    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.base import Part
    from corpusforge.sources.files import FilesSource


class RecordFormat(InputFormat):
    """A file of records (rows, objects, lines), each one document."""

    # Whether records have named fields, so ``text_template`` and media references apply
    # (plain text lines have none).
    fields: ClassVar[bool] = True

    def records(self, source: FilesSource, part: Part, stream: IO[bytes], plain: bool, ctx: TaskContext
                ) -> Iterator[readers.Record]:
        """The part's records; ``plain``: ``stream`` is the file itself, not a decompression."""
        raise NotImplementedError(f"record format {self.name!r} defines no records()")

    def direct(self, source: FilesSource, part: Part, stream: IO[bytes], ctx: TaskContext
               ) -> Iterator[Document] | None:
        """Documents read without the records step where the options allow (None: they do not)."""
        return None

    def read(self, source: FilesSource, part: Part, kind: Kind, data: bytes | None, ctx: TaskContext
             ) -> Iterator[Document]:
        raw, stream, plain = source.open(part)
        templated = source.text_template is not None
        try:
            docs = self.direct(source, part, stream, ctx)
            if docs is not None:
                yield from docs
                return
            records = self.records(source, part, stream, plain, ctx)
            if source.media_reading.enabled and self.fields:
                for doc in source.documents_of(part, source.media_reading.records(part, records, ctx), {}, templated):
                    doc.media = doc.metadata.get("media")
                    yield doc
                return
            yield from source.documents_of(part, records, {}, templated and self.fields)
        finally:
            stream.close()
            raw.close()


def _nested(source: FilesSource) -> bool:
    """Whether the text or id field is a dotted path into nested objects (no template)."""
    return source.text_template is None and "." in source.text_field + (source.id_field or "")


@INPUT_FORMATS.register("jsonl")
class JsonlFormat(RecordFormat):
    """JSON Lines: one object per line."""

    extensions = (".jsonl", ".ndjson")
    detect: ClassVar[Detect] = "name"
    planned = True
    split: ClassVar[Split] = "lines"

    def direct(self, source: FilesSource, part: Part, stream: IO[bytes], ctx: TaskContext
               ) -> Iterator[Document] | None:
        if _nested(source):
            records = readers.read_json_nested(stream, part.path, ctx.quarantine, source.text_field, source.id_field,
                                               self.name == "json", part.start, part.end, source.max_document_bytes)
            return source.documents_of(part, records, {})
        if (self.name == "jsonl" and source.text_template is None and not source.id_field and not source.id_prefix
                and not source.extra_metadata and not source.media_reading.enabled):
            from corpusforge.redact_urls import redact_url

            return readers.read_jsonl_documents(stream, redact_url(part.path), ctx.quarantine, source.text_field,
                                                f"{source.source_name}/{part.key}", source.source_name,
                                                part.start, part.end, source.max_document_bytes)
        return None

    def records(self, source: FilesSource, part: Part, stream: IO[bytes], plain: bool, ctx: TaskContext
                ) -> Iterator[readers.Record]:
        return readers.read_jsonl(stream, part.path, ctx.quarantine, source.text_field, part.start, part.end,
                                  source.text_template, source.max_document_bytes)


@INPUT_FORMATS.register("json")
class JsonFormat(JsonlFormat):
    """A ``.json`` file holding one object or an array of objects (or, often, JSON Lines)."""

    extensions = (".json",)
    split: ClassVar[Split] = "whole"

    def records(self, source: FilesSource, part: Part, stream: IO[bytes], plain: bool, ctx: TaskContext
                ) -> Iterator[readers.Record]:
        return readers.read_json_array(stream, part.path, ctx.quarantine, source.text_field, source.text_template)


def _seekable(stream: IO[bytes], plain: bool, path: str) -> IO[bytes]:
    """``stream`` if it is the file itself, else its bytes in memory (random access is needed)."""
    return stream if plain else io.BytesIO(readers.read_whole(stream, path))


@INPUT_FORMATS.register("parquet")
class ParquetFormat(RecordFormat):
    """Parquet: one row group in memory at a time; a plain file is cut into row-group tasks."""

    extensions = (".parquet", ".pq")
    detect: ClassVar[Detect] = "magic"
    planned = True
    split: ClassVar[Split] = "row_groups"

    def records(self, source: FilesSource, part: Part, stream: IO[bytes], plain: bool, ctx: TaskContext
                ) -> Iterator[readers.Record]:
        return readers.read_parquet(_seekable(stream, plain, part.path), part.path, ctx.quarantine, source.text_field,
                                    part.start, part.end, source.text_template, source.max_document_bytes)


@INPUT_FORMATS.register("arrow")
class ArrowFormat(RecordFormat):
    """Arrow IPC files (Feather v2) and streams, one record batch in memory at a time."""

    extensions = (".arrow", ".feather", ".ipc")
    planned = True

    def records(self, source: FilesSource, part: Part, stream: IO[bytes], plain: bool, ctx: TaskContext
                ) -> Iterator[readers.Record]:
        return readers.read_arrow(_seekable(stream, plain, part.path), part.path, ctx.quarantine, source.text_field,
                                  source.text_template)


@dataclass(frozen=True)
class CsvOptions:
    """The CSV/TSV reader's options (recipe keys ``csv_delimiter``, ``csv_header``, ``csv_columns``):
    the delimiter (None: ``,`` for CSV, tab for TSV), whether the first row names the columns,
    and the column names to use instead."""

    delimiter: str | None = None
    header: bool = True
    columns: list[str] | None = None

    def __post_init__(self) -> None:
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"csv_delimiter: {self.delimiter!r} must be one character (e.g. ';' or '|')")


@INPUT_FORMATS.register("csv")
class CsvFormat(RecordFormat):
    """Comma-separated values, one row per document."""

    extensions = (".csv",)
    detect: ClassVar[Detect] = "name"
    planned = True
    default_delimiter: ClassVar[str] = ","

    def records(self, source: FilesSource, part: Part, stream: IO[bytes], plain: bool, ctx: TaskContext
                ) -> Iterator[readers.Record]:
        opts = source.csv
        delim = opts.delimiter or self.default_delimiter
        rows = readers.csv_with_header(stream, delim, opts.header, opts.columns)
        return readers.read_csv(rows, part.path, ctx.quarantine, source.text_field, delim, source.text_template)


@INPUT_FORMATS.register("tsv")
class TsvFormat(CsvFormat):
    """Tab-separated values."""

    extensions = (".tsv",)
    default_delimiter: ClassVar[str] = "\t"


@INPUT_FORMATS.register("text")
class TextFormat(RecordFormat):
    """Plain text: one document per file, line or paragraph (``text_unit``)."""

    extensions = (".txt",)
    fields: ClassVar[bool] = False

    def splittable(self, source: FilesSource) -> bool:
        return source.text_unit == "line"

    def records(self, source: FilesSource, part: Part, stream: IO[bytes], plain: bool, ctx: TaskContext
                ) -> Iterator[readers.Record]:
        return readers.read_text(stream, part.path, ctx.quarantine, source.text_unit, source.encoding_errors,
                                 part.start, part.end, source.encoding, source.max_document_bytes)


@INPUT_FORMATS.register("binary")
class BinaryFormat(InputFormat):
    """Bytes with NULs: not text, unless an explicit ``encoding`` says it is (UTF-16/32 without BOM)."""

    forceable = False

    def read(self, source: FilesSource, part: Part, kind: Kind, data: bytes | None, ctx: TaskContext
             ) -> Iterator[Document]:
        if source.encoding != "auto":
            return INPUT_FORMATS.get("text")().read(source, part, kind, data, ctx)
        ctx.quarantine(part.path, "binary file (NUL bytes), not text", None)
        return iter(())
