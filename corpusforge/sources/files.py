"""The ``files`` source: local paths, folders and globs, or any fsspec URL, in any known format."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import io
import itertools
import os
import posixpath
import stat
import string
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, Literal

import fsspec
import pyarrow.parquet as pq
import xxhash
from fsspec.core import url_to_fs

from corpusforge.document import DocIdHasher, Document, make_doc_id
from corpusforge.errors import CorpusforgeError, CorruptInput
from corpusforge.extract.base import ExtractionError
from corpusforge.extract.detect import CODE_EXTENSIONS, HEAD_BYTES, Kind, extension, sniff
from corpusforge.extract.formats import DOCUMENT_FAMILIES, ExtractOptions, extract_document, is_license_file
from corpusforge.media import ingest as media_ingest
from corpusforge.media.items import PLACEHOLDER
from corpusforge.redact_urls import redact_url
from corpusforge.registry import SOURCES
from corpusforge.sources import archives, readers
from corpusforge.sources.base import Part, Source, TaskInput
from corpusforge.sources.compression import (
    COMPRESSED_SUFFIXES,
    DEFAULT_EXPANSION_FLOOR_BYTES,
    DEFAULT_MAX_EXPANSION_RATIO,
    decompressing_reader,
    expansion_limit,
    gzip_is_per_record,
    sniff_compression,
    strip_compression_suffix,
)

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

Format = Literal[
    "auto", "jsonl", "json", "parquet", "csv", "tsv", "text", "html", "xml", "markdown", "rst", "code", "pdf",
    "docx", "pptx", "xlsx", "epub", "odf", "warc", "arrow", "notebook",
]
_RECORD_FORMATS = ("jsonl", "json", "parquet", "csv", "tsv", "text", "arrow")
_EXT_FORMAT = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    **dict.fromkeys((".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst"), "tar"),
    ".zip": "archive",
    **dict.fromkeys((".arrow", ".feather", ".ipc"), "arrow"),
}


def format_of(path: str) -> str:
    """The reader a file needs, from its name with any compression suffix removed."""
    ext = posixpath.splitext(strip_compression_suffix(path).lower())[1]
    return _EXT_FORMAT.get(ext, "text")


@SOURCES.register("files")
class FilesSource(Source):
    """Files under ``path`` (a file, a folder, a glob, or a list of them; any fsspec URL).

    ``format: auto`` detects each file's content type from its bytes first and its extension
    second (see ``corpusforge.extract.detect``): records formats (.jsonl/.ndjson, .json, .parquet,
    .csv, .tsv), plain text, and extracted formats (HTML, XML, Markdown, reStructuredText, code,
    PDF, DOCX, PPTX, XLSX, EPUB, ODF, WARC/ARC); media files are recognised and never read as
    text. Compression (gz, zst, bz2, xz) is detected from the bytes. ``text_unit`` says what one
    document is in a text file; ``text_template`` (e.g. ``"{title}\n\n{body}"``) builds the text
    of a record from its fields instead of ``text_field`` (the fields it uses are then not metadata);
    ``id_prefix`` (e.g. ``"{source}/"``) starts every document id of the source. Files and folders whose names start
    with a dot are skipped; ``include``/``exclude`` are globs on the path relative to the root.
    With ``media: pass``, the media a record or page names is loaded only from inside the root it
    was found under (symlinks followed) or under ``media_roots`` (folders, URL prefixes);
    ``allow_external_media`` lets any local file through. Other references are quarantined with
    the reason and the document keeps its text.
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
        encoding: str = "auto",
        metadata: dict[str, Any] | None = None,
        text_template: str | None = None,
        pdf_password: str | None = None,
        pdf_password_env: str | None = None,
        pdf_mode: Literal["auto", "plain", "layout"] = "auto",
        media: Literal["quarantine", "pass"] = "quarantine",
        embedded_media: Literal["skip", "keep"] = "skip",
        favor_precision: bool = True,
        max_extract_bytes: int = 256 * 1024 * 1024,
        content_hash: bool = True,
        incremental: bool = False,
        max_expansion_ratio: float | None = DEFAULT_MAX_EXPANSION_RATIO,
        expansion_floor_bytes: int = DEFAULT_EXPANSION_FLOOR_BYTES,
        media_roots: list[str] | None = None,
        allow_external_media: bool = False,
        id_prefix: str | None = None,
        csv_delimiter: str | None = None,
        csv_header: bool = True,
        csv_columns: list[str] | None = None,
        skip: int = 0,
        limit: int | None = None,
    ):
        self.source_name = name
        self.paths = [path] if isinstance(path, str) else list(path)
        if not self.paths:
            raise ValueError("path: at least one path is required")
        self.format = format
        self.text_field, self.id_field = text_field, id_field
        self.id_prefix = _check_id_prefix(id_prefix)
        self.text_unit = text_unit
        self.include, self.exclude = include or [], exclude or []
        self.encoding_errors = encoding_errors
        from corpusforge.extract.charset import check_encoding

        self.encoding = check_encoding(encoding)
        self.extra_metadata = metadata or {}
        if text_template is not None:
            _check_template(text_template)
        if pdf_password and pdf_password_env:
            raise ValueError("pdf_password and pdf_password_env: give one, not both")
        self.text_template = text_template
        self.pdf_password, self.pdf_password_env, self.pdf_mode = pdf_password, pdf_password_env, pdf_mode
        self.media, self.favor_precision = media, favor_precision
        self.embedded_media = embedded_media
        self._refs_cache: dict[str, set[str]] = {}
        if any(not isinstance(r, str) or not r.strip() for r in media_roots or []):
            raise ValueError("media_roots: every entry must be a folder or a URL prefix (a non-empty string)")
        self.media_roots = [r.strip() for r in media_roots or []]
        self.allow_external_media = allow_external_media
        self._scopes: dict[str, media_ingest.MediaScope] = {}
        self.max_extract_bytes = max_extract_bytes
        self.hash_inputs, self.incremental = content_hash, incremental
        if max_expansion_ratio is not None and max_expansion_ratio < 1:
            raise ValueError(f"max_expansion_ratio: {max_expansion_ratio} is below 1 (null turns the limit off)")
        if expansion_floor_bytes < 0:
            raise ValueError(f"expansion_floor_bytes: {expansion_floor_bytes} is negative")
        self.max_expansion_ratio, self.expansion_floor_bytes = max_expansion_ratio, expansion_floor_bytes
        self._license_cache: dict[str, str | None] = {}
        self._names_cache: dict[str, set[str]] = {}
        if csv_delimiter is not None and len(csv_delimiter) != 1:
            raise ValueError(f"csv_delimiter: {csv_delimiter!r} must be one character (e.g. ';' or '|')")
        self.csv_delimiter, self.csv_header, self.csv_columns = csv_delimiter, csv_header, csv_columns
        if skip < 0 or (limit is not None and limit < 1):
            raise ValueError(f"skip: {skip}, limit: {limit}: skip must be 0 or more and limit 1 or more (null: no limit)")
        self.skip, self.limit = skip, limit
        self._members: dict[str, bytes] = {}  # archive members being read, by their path (archives.py)

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
        with ThreadPoolExecutor(_LIST_THREADS) as pool:
            listings = list(pool.map(self._list, self.paths))
        for fs, base, entries in listings:
            for p, info in sorted(entries.items()):
                if info.get("type") == "directory":
                    continue
                rel = posixpath.relpath(p, base) if base else p
                if not self._wanted(rel):
                    continue
                uri = p if _is_local(fs) else fs.unstrip_protocol(p)
                mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0
                mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
                etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
                found.setdefault(rel, (fs, Part(uri, key=rel, size=int(info.get("size") or 0), mtime=mtime, etag=etag)))
        if not found:
            raise CorpusforgeError(f"source {self.source_name!r}: no input files under {self.paths}")
        return [found[k] for k in sorted(found)]

    def _list(self, spec: str) -> tuple[fsspec.AbstractFileSystem, str, dict[str, Any]]:
        """``(fs, base, {path: info})`` for one path spec. A folder's subfolders are listed in
        parallel (object-store listings are slow per request, not per byte)."""
        fs, root = url_to_fs(spec)
        if _is_local(fs) and not _has_glob(root) and os.path.isdir(root):
            return fs, root, _walk_local(root)
        if _has_glob(root):
            base = root
            while _has_glob(base):
                base = posixpath.dirname(base)
            return fs, base, fs.glob(root, detail=True)
        if fs.isdir(root):
            entries: dict[str, Any] = {}
            subdirs = []
            for info in fs.ls(root, detail=True):
                if info.get("type") == "directory":
                    subdirs.append(info["name"])
                else:
                    entries[info["name"]] = info
            for sub in _map_threads(lambda d: fs.find(d, detail=True), subdirs):
                entries.update(sub)
            return fs, root, entries
        if fs.exists(root):
            return fs, posixpath.dirname(root), {root: fs.info(root)}
        if "hf" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
            with contextlib.suppress(FileNotFoundError):
                fs.info(root)  # exists() says False for a Hub out of reach too: raise that error instead
        raise CorpusforgeError(f"source {self.source_name!r}: path {spec!r} does not exist")

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

    def _parquet_metadata(self, fs: fsspec.AbstractFileSystem, part: Part) -> pq.FileMetaData | None:
        """The footer of a plain Parquet file, to cut it by row groups; None for a compressed or
        unreadable one, which is read whole (and quarantined by the reader if it is damaged)."""
        with fs.open(part.path, "rb") as fh:
            if sniff_compression(fh.read(8)) is not None:
                return None
            fh.seek(0)
            try:
                return pq.ParquetFile(fh).metadata
            except Exception:  # pyarrow raises several unrelated types for a damaged footer
                return None

    def plan(self, task_bytes: int) -> list[TaskInput]:
        if self.skip or self.limit is not None:  # one task: which documents come first must not depend on workers
            return [TaskInput(self.source_name, tuple(part for _, part in self.discover()))]
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
            meta = self._parquet_metadata(fs, part) if fmt == "parquet" and part.size > task_bytes else None
            if meta is not None:
                flush()
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
                if self.incremental:
                    if _cut_after(part, task_bytes) or group_bytes >= 4 * task_bytes:
                        flush()
                elif group_bytes >= task_bytes:
                    flush()
        flush()
        return tasks

    # -- reading ---------------------------------------------------------------------------------

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        docs = self._read_task(task, ctx)
        if self.skip or self.limit is not None:
            yield from itertools.islice(docs, self.skip, None if self.limit is None else self.skip + self.limit)
            return
        yield from docs

    def _read_task(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        for part in task.parts:
            try:
                yield from self._read_part(part, ctx)
            except CorruptInput as exc:
                ctx.quarantine(exc.location, exc.reason, exc.raw)
            except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
                ctx.quarantine(part.path, f"cannot open: {exc.strerror or exc}", None)

    def _open(self, part: Part) -> tuple[IO[bytes], IO[bytes], bool]:
        member = self._members.get(part.path)
        raw = io.BytesIO(member) if member is not None else fsspec.open(part.path, "rb").open()
        head = raw.read(8)
        raw.seek(0)
        comp = sniff_compression(head)
        stream = decompressing_reader(raw, comp, self._expansion_limit(part), part.path, part.size)
        return raw, stream, comp is None

    def _expansion_limit(self, part: Part) -> int | None:
        """The most bytes this part's compressed stream or ZIP container may expand to."""
        return expansion_limit(part.size, self.max_expansion_ratio, self.expansion_floor_bytes)

    def _kind(self, part: Part) -> tuple[Kind, bytes | None]:
        """The part's kind and, for whole-file formats, its (decompressed) bytes."""
        if self.format != "auto":
            fmt = self.format
            lang = CODE_EXTENSIONS.get(extension(part.path), "") if fmt == "code" else ""
            return Kind(fmt, language=lang), None
        if part.start != 0 or part.end != -1:  # a split of a line-based file, decided at planning
            return Kind(format_of(part.path)), None
        raw, stream, _ = self._open(part)
        try:
            head = stream.read(HEAD_BYTES)
            kind = sniff(head, part.path)
            if kind.family not in DOCUMENT_FAMILIES:
                return kind, None
            data = head + stream.read(max(0, self.max_extract_bytes - len(head) + 1))
            if len(data) > self.max_extract_bytes:
                raise CorruptInput(part.path, f"file too large to extract (over {self.max_extract_bytes} bytes)")
            if head.startswith(b"PK\x03\x04"):  # DOCX, PPTX, XLSX, EPUB, ODF: told apart by members
                kind = sniff(head, part.path, data)
            return kind, data
        except readers.STREAM_ERRORS:
            # A damaged stream: let the extension's reader yield what it can and report the damage.
            return Kind(format_of(part.path)), None
        finally:
            stream.close()
            raw.close()

    def _read_part(self, part: Part, ctx: TaskContext) -> Iterator[Document]:
        # An archive member is read from its archive's bytes, not from the path it is named by.
        why = _local_oddity(part) if "://" not in part.path and part.path not in self._members else None
        if why:
            ctx.quarantine(part.path, why, None)
            return
        if part.size == 0 and part.start == 0:
            ctx.quarantine(part.path, "empty file", None)
            return
        if self.media == "pass" and media_ingest.is_caption(part.path, self._names):
            return  # the caption of the media file beside it, read with that file
        kind, data = self._kind(part)
        fam = kind.family
        if fam == "binary" and self.encoding != "auto":  # NUL bytes are text in UTF-16/32 without a BOM
            fam = "text"
        if fam in _RECORD_FORMATS:
            yield from self._read_records(part, fam, ctx)
        elif fam == "binary":
            ctx.quarantine(part.path, "binary file (NUL bytes), not text", None)
        elif kind.is_media:
            yield from self._media_document(part, kind, ctx)
        elif fam in archives.ARCHIVE_FAMILIES:
            yield from archives.read_archive(self, part, fam, data, ctx)
        elif fam == "warc":
            from corpusforge.extract.warc import read_warc

            raw, stream, plain = self._open(part)
            try:
                # warcio reads gzip per record itself, so offsets are those of the compressed file;
                # zstd, bz2 and xz archives are read decompressed (offsets of the decompressed bytes).
                per_record = plain or (getattr(stream, "compression", "") == "gzip" and gzip_is_per_record(raw))
                records = read_warc(raw if per_record else stream, part.path, ctx.quarantine,
                                    self.favor_precision, self._expansion_limit(part), part.size,
                                    lambda why: ctx.count(self, f"warc records skipped: {why}"))
                yield from self._documents(part, records, {"format": "warc"})
            finally:
                stream.close()
                raw.close()
        else:
            if data is None:
                raw, stream, _ = self._open(part)
                try:
                    data = readers.read_whole(stream, part.path)
                finally:
                    stream.close()
                    raw.close()
            if fam == "html" and self.media == "pass" and media_ingest.has_media_tags(data):
                yield from self._html_with_media(part, data, ctx)
                return
            opts = ExtractOptions(self._pdf_password(), self.favor_precision, self.pdf_mode, self.encoding_errors,
                                  self.max_expansion_ratio, self.expansion_floor_bytes, part.size, self.encoding)
            try:
                out = extract_document(data, kind, part.path, opts)
            except ExtractionError as exc:
                ctx.quarantine(part.path, str(exc), None)
                return
            meta = {"format": fam, **out.metadata}
            if kind.mime:
                meta.setdefault("content_type", kind.mime)
            if fam == "code":
                meta["path"] = part.key
                license_file = self._license_file(part)
                if license_file:
                    meta["license_file"] = license_file
            yield from self._documents(part, iter([(0, out.text, meta)]), {})

    def _license_file(self, part: Part) -> str | None:
        """The nearest LICENSE/COPYING file in the code file's folder or an ancestor up to the
        source root, as a path relative to the root (folder listings cached per source)."""
        if not part.path.endswith(part.key):
            return None
        root = part.path[: len(part.path) - len(part.key)].rstrip("/")
        rel_dir = posixpath.dirname(part.key)
        cache = self._license_cache
        while True:
            if rel_dir not in cache:
                folder = f"{root}/{rel_dir}" if rel_dir else root
                try:
                    fs, path = url_to_fs(folder)
                    names = sorted(posixpath.basename(n) for n in fs.ls(path, detail=False))
                except (FileNotFoundError, NotADirectoryError, PermissionError):
                    names = []
                found = next((n for n in names if is_license_file(n)), None)
                cache[rel_dir] = f"{rel_dir}/{found}" if found and rel_dir else found
            if cache[rel_dir] or not rel_dir:
                return cache[rel_dir]
            rel_dir = posixpath.dirname(rel_dir)

    def _pdf_password(self) -> str | None:
        if self.pdf_password_env:  # unset: no password configured, encrypted PDFs are quarantined
            return os.environ.get(self.pdf_password_env) or None
        return self.pdf_password

    def _media_document(self, part: Part, kind: Kind, ctx: TaskContext) -> Iterator[Document]:
        if self.media == "quarantine":
            what = kind.mime or kind.family
            ctx.quarantine(part.path, f"media file: enable the multimodal stage (source option media: pass; {what})", None)
            return
        if self.embedded_media == "skip" and self._embedded(part):
            return  # already a part of the page or record that embeds it
        data = media_ingest.read_bytes(part.path)
        why = media_ingest.refusal(kind.family, kind.mime, data)
        if why:  # random bytes named .jpg, a decompression bomb: never a media document
            ctx.quarantine(part.path, why, None)
            return
        item = media_ingest.media_item(part.path, kind.family, kind.mime, data)
        text, caption_meta = "", {}
        caption = media_ingest.read_caption(part.path, self._names)
        if caption is not None:
            text, caption_meta = PLACEHOLDER + caption[0], caption[1]
        meta = {**self.extra_metadata, **caption_meta, "media": [item], "source_name": self.source_name}
        key = f"{self.source_name}/{part.key}"
        yield Document(text, make_doc_id(key, 0, part.key), redact_url(part.path), 0, meta, [item])

    def _media_scope(self, part: Part) -> media_ingest.MediaScope:
        """Where the media that ``part`` names may be: the root it was found under, ``media_roots``."""
        root = part.path[: len(part.path) - len(part.key)] if part.path.endswith(part.key) else None
        root = (root.rstrip("/") or "/") if root else posixpath.dirname(part.path)
        if root not in self._scopes:
            self._scopes[root] = media_ingest.MediaScope(root, self.media_roots, self.allow_external_media)
        return self._scopes[root]

    def _html_with_media(self, part: Part, data: bytes, ctx: TaskContext) -> Iterator[Document]:
        """An HTML page with its images, video and audio in document order (``media: pass``)."""
        def refused(why: str) -> None:
            ctx.quarantine(part.path, f"media reference refused: {why}", kept=True)

        text, meta, items = media_ingest.interleaved_html(data, part.path, self._media_scope(part), refused)
        if not text.strip(PLACEHOLDER + " \n"):
            if not items:
                raise CorruptInput(part.path, "HTML has no main text")
        meta = {**self.extra_metadata, **meta, "content_type": "text/html", "media": items,
                "source_name": self.source_name}
        key = f"{self.source_name}/{part.key}"
        yield Document(text, make_doc_id(key, 0, text), redact_url(part.path), 0, meta, items or None)

    def _records_with_media(self, part: Part, records: Iterator[readers.Record], ctx: TaskContext
                            ) -> Iterator[readers.Record]:
        """Records whose ``image``/``audio``/``video`` fields name media files: the media first,
        then the record's text (its caption) after a placeholder each. A refused reference is
        quarantined and left out; the record keeps its text and its other media."""
        scope = self._media_scope(part)
        for offset, text, fields in records:
            try:
                items, refused = media_ingest.record_media(fields, part.path, scope)
            except (OSError, ValueError) as exc:
                ctx.quarantine(f"{part.path} at {offset}", f"record media: {exc}", None)
                continue
            for why in refused:
                ctx.quarantine(f"{part.path} at {offset}", f"media reference refused: {why}", kept=True)
            if refused:
                fields["media_refused"] = len(refused)
            if items:
                fields["media"] = items
                text = PLACEHOLDER * len(items) + text
            yield offset, text, fields

    def _embedded(self, part: Part) -> bool:
        """Whether an HTML page or a JSON/JSONL records file in the media file's folder, or a folder
        above it up to the source root, embeds it (``<img src>``, an ``image``/``audio``/``video``
        field), so it is in that document already (``embedded_media: skip``)."""
        target = posixpath.normpath(part.path)
        folder = posixpath.dirname(part.path)
        root = part.path[: len(part.path) - len(part.key)].rstrip("/") if part.path.endswith(part.key) else folder
        while True:
            if folder not in self._refs_cache:
                self._refs_cache[folder] = self._references(folder)
            if target in self._refs_cache[folder]:
                return True
            if len(folder) <= len(root) or posixpath.dirname(folder) == folder:
                return False
            folder = posixpath.dirname(folder)

    def _references(self, folder: str) -> set[str]:
        """Normalized uris of the media that the pages and records files directly in ``folder`` name."""
        refs: set[str] = set()
        for name in sorted(self._names(folder)):
            uri = f"{folder}/{name}"
            low = name.lower()
            try:
                if low.endswith((".html", ".htm", ".xhtml")):
                    found = media_ingest.html_media_refs(media_ingest.read_bytes(uri))
                elif low.endswith((".jsonl", ".ndjson", ".json")) and not media_ingest.is_caption(uri, self._names):
                    found = media_ingest.record_media_refs(media_ingest.read_bytes(uri))
                else:
                    continue
            except (OSError, ValueError):
                continue  # unreadable here: the read of that file reports it
            for ref in found:
                resolved = media_ingest.resolve_ref(ref, uri)
                if resolved is not None and not resolved.startswith("data:"):
                    refs.add(posixpath.normpath(resolved))
        return refs

    def _names(self, folder: str) -> set[str]:
        """File names in ``folder`` (cached per source), to find captions beside media files."""
        if folder not in self._names_cache:
            try:
                fs, path = url_to_fs(folder)
                self._names_cache[folder] = {posixpath.basename(n) for n in fs.ls(path, detail=False)}
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                self._names_cache[folder] = set()
        return self._names_cache[folder]

    def _read_records(self, part: Part, fmt: str, ctx: TaskContext) -> Iterator[Document]:
        raw, stream, plain = self._open(part)
        q = ctx.quarantine
        tf, tpl = self.text_field, self.text_template
        try:
            if fmt in ("jsonl", "json") and tpl is None and "." in tf + (self.id_field or ""):
                records = readers.read_json_nested(stream, part.path, q, tf, self.id_field, fmt == "json",
                                                   part.start, part.end)
                yield from self._documents(part, records, {})
                return
            if (fmt == "jsonl" and tpl is None and not self.id_field and not self.id_prefix and not self.extra_metadata
                    and self.media != "pass"):
                yield from readers.read_jsonl_documents(stream, redact_url(part.path), q, tf, f"{self.source_name}/{part.key}",
                                                        self.source_name, part.start, part.end)
                return
            if fmt == "jsonl":
                records = readers.read_jsonl(stream, part.path, q, tf, part.start, part.end, tpl)
            elif fmt == "json":
                records = readers.read_json_array(stream, part.path, q, tf, tpl)
            elif fmt == "parquet":
                # Parquet needs random access: a compressed Parquet file is decompressed in memory.
                seekable = stream if plain else io.BytesIO(readers.read_whole(stream, part.path))
                records = readers.read_parquet(seekable, part.path, q, tf, part.start, part.end, tpl)
            elif fmt == "arrow":  # the IPC file format needs random access, as Parquet does
                seekable = stream if plain else io.BytesIO(readers.read_whole(stream, part.path))
                records = readers.read_arrow(seekable, part.path, q, tf, tpl)
            elif fmt in ("csv", "tsv"):
                delim = self.csv_delimiter or ("\t" if fmt == "tsv" else ",")
                rows = readers.csv_with_header(stream, delim, self.csv_header, self.csv_columns)
                records = readers.read_csv(rows, part.path, q, tf, delim, tpl)
            else:
                records = readers.read_text(stream, part.path, q, self.text_unit, self.encoding_errors,
                                            part.start, part.end, self.encoding)
            if self.media == "pass" and fmt != "text":
                for doc in self._documents(part, self._records_with_media(part, records, ctx), {}, tpl is not None):
                    doc.media = doc.metadata.get("media")
                    yield doc
                return
            yield from self._documents(part, records, {}, tpl is not None and fmt != "text")
        finally:
            stream.close()
            raw.close()

    def _documents(self, part: Part, records: Iterator[readers.Record], base: dict[str, Any],
                   templated: bool = False) -> Iterator[Document]:
        """Documents from ``records`` (``templated``: their text was filled from ``text_template``)."""
        make_id = DocIdHasher(f"{self.source_name}/{part.key}")
        id_field, name, path = self.id_field, self.source_name, redact_url(part.path)
        extra = {**self.extra_metadata, **base}
        # The text already holds the fields its template used: they are not metadata too.
        used = readers.template_fields(self.text_template) if templated and self.text_template else frozenset()
        prefix = self.id_prefix.format(source=name) if self.id_prefix else ""
        if not id_field and not extra and not used and not prefix:  # the common case, fewest operations per record
            for offset, text, fields in records:
                fields["source_name"] = name
                yield Document(text, make_id(offset, text), path, offset, fields)
            return
        for offset, text, fields in records:
            doc_id = fields.pop(id_field, None) if id_field else None
            for key in used:
                fields.pop(key, None)
            if extra:
                fields = {**extra, **fields}
            fields["source_name"] = name
            doc_id = str(doc_id) if doc_id is not None else make_id(offset, text)
            yield Document(text, prefix + doc_id, path, offset, fields)


def _check_id_prefix(prefix: str | None) -> str | None:
    """``id_prefix`` as given, once it is known to format with ``{source}`` as its only field."""
    if prefix is None:
        return None
    try:
        prefix.format(source="s")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"id_prefix {prefix!r}: the only field it may name is {{source}} ({exc})") from None
    return prefix


def _check_template(template: str) -> None:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"text_template {template!r} is not a valid format string: {exc}") from None
    if not names:
        raise ValueError(f"text_template {template!r} names no field; write fields as {{title}}")


_LIST_THREADS = 8
_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _display(path: str) -> str:
    """``path`` as valid UTF-8 text: undecodable name bytes (surrogateescape) become ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _walk_local(root: str) -> dict[str, Any]:
    """``{path: info}`` of every entry under a local folder, symlinked folders followed once.

    Real folders are walked first and each folder (by device and inode) is read at most once, so a
    symlink to an ancestor (a loop) or to a folder already read is listed as itself, not followed;
    so are dangling links, special files and folders that cannot be listed. ``_local_oddity``
    gives the reason when the task reads them, which quarantines them instead of opening them.
    """
    entries: dict[str, Any] = {}
    seen: set[tuple[int, int]] = set()
    links: list[str] = []

    def add(path: str, st: os.stat_result | None) -> None:
        info = {"type": "file", "size": st.st_size if st else 0, "mtime": st.st_mtime if st else 0.0}
        entries[_display(path)] = {"name": _display(path), **info}

    def visit(folder: str) -> None:
        st = os.stat(folder)
        seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError:
            add(folder, None)
            return
        for entry in children:
            try:
                if entry.is_symlink():
                    target = os.stat(entry.path)
                    if stat.S_ISDIR(target.st_mode):
                        links.append(entry.path)
                    else:
                        add(entry.path, target)
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name.startswith("."):
                        continue  # hidden folders are skipped (``_wanted``): do not walk them
                    visit(entry.path)
                else:
                    add(entry.path, entry.stat(follow_symlinks=False))
            except OSError:  # dangling link, link loop, entry gone: the read says which
                add(entry.path, None)

    visit(root)
    while links:
        link = links.pop(0)
        st = os.stat(link)
        if (st.st_dev, st.st_ino) in seen or os.path.basename(link).startswith("."):
            add(link, None)
        else:
            visit(link)
    return entries


def _local_oddity(part: Part) -> str | None:
    """Why a listed local path cannot be read as a file (None for a regular file): a special
    file, a folder (loop, already read, unlistable), a dangling link, a name that is not UTF-8,
    a file gone or changed since it was listed. Checked before opening: opening a FIFO blocks."""
    path = part.path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"dangling symlink (its target {os.readlink(path)!r} does not exist)"
        if _undecodable_name(path):
            return "file name is not valid UTF-8: rename the file to read it"
        return "file vanished after it was listed"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symlink loop: {exc.strerror}"
        return f"cannot open: {exc.strerror or exc}"
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        if not os.path.islink(path):
            return "cannot list folder: permission denied" if not os.access(path, os.R_OK | os.X_OK) \
                else "cannot list folder"
        real, parent = os.path.realpath(path), os.path.realpath(os.path.dirname(path))
        if parent == real or parent.startswith(real.rstrip("/") + "/"):
            return f"symlink loop: links to its own ancestor folder {_display(real)}"
        return f"symlinked folder already read through another path ({_display(real)})"
    for test, what in _SPECIAL:
        if test(mode):
            return f"not a regular file: {what}"
    if part.start == 0 and part.end == -1 and part.size and st.st_size != part.size:
        return f"file changed after it was listed (size {part.size} -> {st.st_size} bytes); run again to read it"
    return None


def _undecodable_name(display: str) -> bool:
    """Whether ``display`` is the ``_display`` form of a name in its folder that is not UTF-8."""
    folder, name = os.path.split(display)
    try:
        names = os.listdir(folder)
    except OSError:
        return _undecodable_name(folder) if "\\x" in folder else False
    return any(_display(n) == name and n != name for n in names)


def _map_threads(fn: Any, items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(_LIST_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def _replace(part: Part, start: int, end: int, size: int) -> Part:
    return Part(part.path, part.key, start, end, size, part.mtime, etag=part.etag)


def _cut_after(part: Part, task_bytes: int) -> bool:
    """Content-defined task boundary: end a group after ``part`` with probability size/task_bytes,
    decided by a hash of its key. Groups then average ``task_bytes``, and adding or changing a
    file changes only the group it falls in, not every group after it."""
    u = xxhash.xxh3_64_intdigest(part.key.encode("utf-8", "surrogateescape")) / 2.0**64
    return u < part.size / task_bytes
