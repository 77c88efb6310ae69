"""The ``files`` source: local paths, folders and globs, or any fsspec URL, in any known format.

The source lists, filters and plans files; each file is read by the input format registered for
its detected kind (``input_formats.py``: records formats, documents, archives, media).
"""

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

from corpusforge.document import DocIdHasher, Document
from corpusforge.errors import CorpusforgeError, CorruptInput
from corpusforge.extract.detect import HEAD_BYTES, Kind, extension, sniff
from corpusforge.extract.formats import ExtractOptions, is_license_file
from corpusforge.media.reader import MediaOptions, MediaReading
from corpusforge.redact_urls import redact_url
from corpusforge.registry import SOURCES
from corpusforge.sources import readers
from corpusforge.sources.base import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    Part,
    Source,
    TaskInput,
    capped,
    check_max_document_bytes,
)
from corpusforge.sources.compression import (
    COMPRESSED_SUFFIXES,
    DEFAULT_EXPANSION_FLOOR_BYTES,
    DEFAULT_MAX_EXPANSION_RATIO,
    decompressing_reader,
    expansion_limit,
    sniff_compression,
)
from corpusforge.sources.input_formats import forceable_formats, planned_format, reader
from corpusforge.sources.record_formats import CsvOptions

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext




def format_of(path: str) -> str:
    """The input format a file is planned as, from its name with any compression suffix removed."""
    return planned_format(extension(path))


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
    ``id_prefix`` (e.g. ``"{source}/"``) starts every document id of the source;
    ``max_document_bytes`` quarantines a larger document (a huge line is skipped, never held). Files and folders whose names start
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
        format: str = "auto",
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
        max_document_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES,
    ):
        self.source_name = name
        self.paths = [path] if isinstance(path, str) else list(path)
        if not self.paths:
            raise ValueError("path: at least one path is required")
        if format != "auto" and format not in forceable_formats():
            raise ValueError(f"format: {format!r} is not an input format; allowed: auto, "
                             f"{', '.join(sorted(forceable_formats()))}")
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
        self.favor_precision = favor_precision
        self.media_reading = MediaReading(MediaOptions.of(media, embedded_media, media_roots, allow_external_media),
                                          name, self.extra_metadata)
        self.max_extract_bytes = max_extract_bytes
        self.hash_inputs, self.incremental = content_hash, incremental
        if max_expansion_ratio is not None and max_expansion_ratio < 1:
            raise ValueError(f"max_expansion_ratio: {max_expansion_ratio} is below 1 (null turns the limit off)")
        if expansion_floor_bytes < 0:
            raise ValueError(f"expansion_floor_bytes: {expansion_floor_bytes} is negative")
        self.max_expansion_ratio, self.expansion_floor_bytes = max_expansion_ratio, expansion_floor_bytes
        self._license_cache: dict[str, str | None] = {}
        self.csv = CsvOptions(csv_delimiter, csv_header, csv_columns)
        if skip < 0 or (limit is not None and limit < 1):
            raise ValueError(f"skip: {skip}, limit: {limit}: skip must be 0 or more and limit 1 or more (null: no limit)")
        self.skip, self.limit = skip, limit
        self.max_document_bytes = check_max_document_bytes(max_document_bytes)
        self.members: dict[str, bytes] = {}  # archive members being read, by their path (archives.py)

    @property
    def media(self) -> str:
        """The ``media`` option: ``pass`` reads media, ``quarantine`` sets media files aside."""
        return self.media_reading.options.media

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

    def _splittable(self, part: Part) -> bool:
        """Whether ``part`` is read line by line, so a byte range of it (of its decompressed bytes,
        for a compressed file) is a task of its own."""
        return reader(self._format(part.path)).splittable(self)

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

    def _text_bytes(self, fs: fsspec.AbstractFileSystem, part: Part, task_bytes: int) -> tuple[bool, int]:
        """Whether ``part`` is compressed, and the bytes it holds decompressed, which tasks are
        sized by: gzip's and zstd's recorded sizes, else ``COMPRESSION_ESTIMATE`` times the file.
        Only a file with a compression suffix or over ``task_bytes`` is opened (its first bytes
        decide). A pure function of the file, so the plan still depends on the input only."""
        if not part.size or (part.size <= task_bytes and not part.path.lower().endswith(COMPRESSED_SUFFIXES)):
            return False, part.size
        try:
            with fs.open(part.path, "rb") as fh:
                head = fh.read(18)
                comp = sniff_compression(head[:8])
                if comp is None:
                    return False, part.size
                if comp == "gzip" and part.size >= 18:
                    fh.seek(part.size - 4)
                    isize = int.from_bytes(fh.read(4), "little")  # the last member's size mod 2^32
                    while isize < part.size:
                        isize += 1 << 32
                    return True, isize
                if comp == "zstd":
                    import zstandard

                    known = zstandard.frame_content_size(head)
                    if known > 0:
                        return True, known
        except (OSError, ValueError):  # unreadable or damaged here: the read says so
            return True, part.size
        return True, part.size * COMPRESSION_ESTIMATE

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
            by_row_groups = reader(self._format(part.path)).split == "row_groups"
            meta = self._parquet_metadata(fs, part) if by_row_groups and part.size > task_bytes else None
            compressed, size = self._text_bytes(fs, part, task_bytes)
            if compressed and size > task_bytes and self._splittable(part):
                # Decompress-and-skip ranges of the decompressed bytes (offsets and ids as if read
                # whole); each range's ``size`` is its share of the file's bytes (``_open`` takes
                # the expansion limit of the whole file).
                flush()
                n = min(MAX_COMPRESSED_SPLITS, -(-size // task_bytes))
                step = -(-size // n)
                for i, off in enumerate(range(0, step * n, step)):
                    end = off + step if i < n - 1 else -1
                    share = part.size * (i + 1) // n - part.size * i // n  # the task's part of the file's bytes
                    tasks.append(TaskInput(self.source_name, (_replace(part, off, end, share),)))
                continue
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
            elif part.size > task_bytes and self._splittable(part):
                flush()
                for off in range(0, part.size, task_bytes):
                    end = min(off + task_bytes, part.size)
                    tasks.append(TaskInput(self.source_name, (_replace(part, off, end, end - off),)))
            else:
                group.append(part)
                group_bytes += size
                if self.incremental:
                    if _cut_after(part, task_bytes, size) or group_bytes >= 4 * task_bytes:
                        flush()
                elif group_bytes >= task_bytes:
                    flush()
        flush()
        return tasks

    # -- reading ---------------------------------------------------------------------------------

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        docs = self._read_task(task, ctx)
        if self.skip or self.limit is not None:
            # Documents over the cap do not count towards skip and limit (the base class caps
            # every source's documents, but after read). Line and whole-file readers skip such a
            # record without holding it; the cap catches the other formats (an extracted page).
            if self.max_document_bytes >= 0:
                docs = capped(docs, self.max_document_bytes, ctx)
            yield from itertools.islice(docs, self.skip, None if self.limit is None else self.skip + self.limit)
            return
        yield from docs

    def _read_task(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        for part in task.parts:
            try:
                yield from self.read_part(part, ctx)
            except CorruptInput as exc:
                ctx.quarantine(exc.location, exc.reason, exc.raw)
            except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
                ctx.quarantine(part.path, f"cannot open: {exc.strerror or exc}", None)

    def open(self, part: Part) -> tuple[IO[bytes], IO[bytes], bool]:
        """``(raw, stream, plain)`` for ``part``: the file (or archive member) as stored, its bytes
        decompressed within the expansion limit, and whether it is not compressed at all."""
        member = self.members.get(part.path)
        raw = io.BytesIO(member) if member is not None else fsspec.open(part.path, "rb").open()
        head = raw.read(8)
        raw.seek(0)
        comp = sniff_compression(head)
        size = part.size
        if comp is not None and (part.start != 0 or part.end != -1):  # a range: its share of the file's size
            size = fsspec.open(part.path).fs.size(part.path)
        limit = expansion_limit(size, self.max_expansion_ratio, self.expansion_floor_bytes)
        stream = decompressing_reader(raw, comp, limit, part.path, size)
        return raw, stream, comp is None

    def read_bytes(self, part: Part) -> bytes:
        """The whole (decompressed) content of ``part``."""
        raw, stream, _ = self.open(part)
        try:
            return readers.read_whole(stream, part.path)
        finally:
            stream.close()
            raw.close()

    def expansion_limit(self, part: Part) -> int | None:
        """The most bytes this part's compressed stream or ZIP container may expand to."""
        return expansion_limit(part.size, self.max_expansion_ratio, self.expansion_floor_bytes)

    def extract_options(self, part: Part) -> ExtractOptions:
        """How the document formats extract ``part`` (PDF password and mode, precision, limits)."""
        return ExtractOptions(self._pdf_password(), self.favor_precision, self.pdf_mode, self.encoding_errors,
                              self.max_expansion_ratio, self.expansion_floor_bytes, part.size, self.encoding)

    def _kind(self, part: Part) -> tuple[Kind, bytes | None]:
        """The part's kind and, for whole-file formats, its (decompressed) bytes."""
        if self.format != "auto":
            return reader(self.format).forced_kind(part.path), None
        if part.start != 0 or part.end != -1:  # a split of a line-based file, decided at planning
            return Kind(format_of(part.path)), None
        raw, stream, _ = self.open(part)
        try:
            head = stream.read(HEAD_BYTES)
            kind = sniff(head, part.path)
            if not reader(kind.family).whole_file:
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

    def read_part(self, part: Part, ctx: TaskContext) -> Iterator[Document]:
        """The documents of one part, by the input format registered for its kind."""
        # An archive member is read from its archive's bytes, not from the path it is named by.
        why = _local_oddity(part) if "://" not in part.path and part.path not in self.members else None
        if why:
            ctx.quarantine(part.path, why, None)
            return
        if part.size == 0 and part.start == 0:
            ctx.quarantine(part.path, "empty file", None)
            return
        if self.media_reading.is_caption(part.path):
            return  # the caption of the media file beside it, read with that file
        kind, data = self._kind(part)
        yield from reader(kind.family).read(self, part, kind, data, ctx)

    def license_file(self, part: Part) -> str | None:
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

    def documents_of(self, part: Part, records: Iterator[readers.Record], base: dict[str, Any],
                     templated: bool = False) -> Iterator[Document]:
        """Documents from ``records`` (``templated``: their text was filled from ``text_template``):
        ids from ``id_field`` or the content, ``metadata`` and ``base`` under the record's fields."""
        make_id = DocIdHasher(f"{self.source_name}/{part.key}")
        id_field, name, path = self.id_field, self.source_name, redact_url(part.path)
        extra = {**self.extra_metadata, **base}
        # The text already holds the fields its template used: they are not metadata too.
        used = readers.template_fields(self.text_template) if templated and self.text_template else frozenset()
        prefix = self.id_prefix.format(source=name) if self.id_prefix else ""
        if not id_field and not extra and not used and not prefix:  # the common case, fewest operations per record
            for offset, text, fields in records:
                yield Document(text, make_id(offset, text), path, offset, fields)
            return
        for offset, text, fields in records:
            doc_id = fields.pop(id_field, None) if id_field else None
            for key in used:
                fields.pop(key, None)
            if extra:
                fields = {**extra, **fields}
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
# A compressed file is split by decompressing and skipping to each range's start, so its k ranges
# decompress about k/2 times its bytes in all: at most this many ranges per file.
MAX_COMPRESSED_SPLITS = 16
COMPRESSION_ESTIMATE = 4  # decompressed bytes per compressed byte where the format records no size (text)
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


def _cut_after(part: Part, task_bytes: int, size: int) -> bool:
    """Content-defined task boundary: end a group after ``part`` (of ``size`` bytes decompressed)
    with probability size/task_bytes, decided by a hash of its key. Groups then average
    ``task_bytes``, and adding or changing a file changes only the group it falls in, not every
    group after it."""
    u = xxhash.xxh3_64_intdigest(part.key.encode("utf-8", "surrogateescape")) / 2.0**64
    return u < size / task_bytes
