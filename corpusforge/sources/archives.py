"""tar and zip archives of documents: each member read as the file it names, one at a time.

Members are taken from the archive in the order it stores them and never written anywhere: a
tar (plain, or gzip/zstd/bz2/xz-compressed, read through the source's ``DecompressedStream`` in
tarfile's stream mode ``r|``) or a zip (read from its bytes) yields one member's bytes, which
the files source then reads exactly like a file of that name found in a folder (format from its
own name and bytes, nested compression, the same extractors). A member is addressed as
``archive.tar.gz!dir/member.txt`` in document URIs, ids and quarantine entries.

Traversal-safe by construction, since nothing is written: members that are links (symbolic or
hard), devices or FIFOs, and names that are absolute or climb out with ``..``, are quarantined
with the reason and never followed. Hidden members (a path part starting with ``.``, such as
``__MACOSX/._a.txt``) are skipped, as in folders. The expansion limit of the archive bounds the
bytes of all its members together (a compressed tar stops as a stream does; a zip member whose
declared size passes what is left is quarantined without being inflated); one member is held in
memory at a time, at most ``max_extract_bytes``.
"""

from __future__ import annotations

import io
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from corpusforge.errors import CorruptInput
from corpusforge.extract.base import Extracted, ExtractionError
from corpusforge.sources.compression import ExpansionLimitExceeded, expansion_reason
from corpusforge.sources.input_formats import INPUT_FORMATS, DocumentFormat, InputFormat
from corpusforge.sources.readers import STREAM_ERRORS, Quarantine, read_whole

if TYPE_CHECKING:
    from corpusforge.document import Document
    from corpusforge.extract.detect import Kind
    from corpusforge.extract.formats import ExtractOptions
    from corpusforge.media.reader import MediaReading
    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.base import Part

MAX_NESTING = 2  # an archive inside an archive is read; one level deeper is quarantined (quine bombs)
_CHUNK = 1 << 16
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
               NotImplementedError, RuntimeError)


class ArchiveReader(Protocol):
    """What ``read_archive`` needs of the files source."""

    media_reading: MediaReading
    max_extract_bytes: int
    members: dict[str, bytes]

    def open(self, part: Part) -> tuple[io.IOBase, io.IOBase, bool]: ...
    def expansion_limit(self, part: Part) -> int | None: ...
    def read_part(self, part: Part, ctx: TaskContext) -> Iterator[Document]: ...


def is_tar_header(head: bytes) -> bool:
    """Whether ``head`` (decompressed) starts with a POSIX/GNU tar header: ``ustar`` at byte 257
    and a header checksum that adds up (so a text file with those letters there stays text)."""
    if len(head) < 512 or head[257:262] != b"ustar":
        return False
    try:
        declared = int(head[148:156].strip(b" \0") or b"-1", 8)
    except ValueError:
        return False
    return declared == sum(head[:148]) + 8 * 0x20 + sum(head[156:512])


def unsafe_name(name: str) -> str:
    """Why a member name may not be used (absolute, or climbing out with ``..``), or ``""``."""
    flat = name.replace("\\", "/")
    if flat.startswith("/") or (len(flat) > 1 and flat[1] == ":"):
        return "absolute member path"
    if ".." in flat.split("/"):
        return "member path climbs out of the archive (..)"
    return ""


def _clean(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/")).lstrip("/") if name not in ("", ".") else name


def _hidden(name: str) -> bool:
    return any(p.startswith(".") for p in name.replace("\\", "/").split("/") if p not in ("", ".", ".."))


class _Steps:
    """A stream whose ``read(n)`` returns one decompression step (``read1``): tarfile asks for 10 KB
    blocks, and a damaged stream must first hand over every byte before the damage."""

    def __init__(self, stream: io.IOBase):
        self.read = getattr(stream, "read1", None) or stream.read


def tar_members(stream: io.IOBase, path: str, quarantine: Quarantine, max_member_bytes: int
                ) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` for every regular file of a tar stream, in archive order."""
    try:
        tf = tarfile.open(fileobj=_Steps(stream), mode="r|")  # type: ignore[call-overload]
        for info in tf:
            name = info.name
            if info.isdir() or _hidden(name):
                continue
            where = f"{path}!{name}"
            why = unsafe_name(name)
            if info.issym() or info.islnk():
                why = f"{'symbolic' if info.issym() else 'hard'} link member (to {info.linkname!r}), not followed"
            elif info.ischr() or info.isblk() or info.isfifo():
                why = "device or FIFO member"
            elif not info.isfile():
                why = why or "not a regular file"
            if why:
                quarantine(where, f"archive member not read: {why}", None)
                continue
            if info.size > max_member_bytes:
                quarantine(where, f"archive member too large to read (over max_extract_bytes {max_member_bytes})", None)
                continue
            fh = tf.extractfile(info)
            yield _clean(name), fh.read() if fh is not None else b""
    except CorruptInput:
        raise
    except (tarfile.TarError, *STREAM_ERRORS) as exc:
        raise CorruptInput(path, f"unreadable tar archive ({type(exc).__name__}: {exc})") from None


def zip_members(data: bytes, path: str, quarantine: Quarantine, limit: int | None, stored: int,
                max_member_bytes: int) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` for every regular file of a zip archive, in directory order."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except _ZIP_ERRORS as exc:
        raise CorruptInput(path, f"unreadable zip archive ({type(exc).__name__}: {exc})") from None
    used = 0
    for info in infos:
        name = info.filename
        if info.is_dir() or _hidden(name):
            continue
        where = f"{path}!{name}"
        mode = info.external_attr >> 16
        why = unsafe_name(name)
        if stat.S_ISLNK(mode):
            why = "symbolic link member, not followed"
        elif mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            why = "device or FIFO member"
        elif info.flag_bits & 0x1:
            why = "encrypted member"
        if why:
            quarantine(where, f"archive member not read: {why}", None)
            continue
        if limit is not None and used + info.file_size > limit:
            quarantine(where, f"zip archive {expansion_reason(limit, stored)}; this member declares {info.file_size} bytes", None)
            continue
        if info.file_size > max_member_bytes:
            quarantine(where, f"archive member too large to read (over max_extract_bytes {max_member_bytes})", None)
            continue
        pieces: list[bytes] = []
        got = 0
        try:
            with zf.open(info) as member:
                while chunk := member.read(_CHUNK):
                    got += len(chunk)
                    if limit is not None and used + got > limit:
                        raise ExpansionLimitExceeded(where, f"zip archive {expansion_reason(limit, stored)}")
                    pieces.append(chunk)
        except ExpansionLimitExceeded as exc:
            quarantine(exc.location, exc.reason, None)
            continue
        except _ZIP_ERRORS as exc:
            quarantine(where, f"unreadable archive member ({type(exc).__name__}: {exc})", None)
            continue
        finally:
            used += got
        yield _clean(name), b"".join(pieces)


def read_archive(source: ArchiveReader, part: Part, members: Iterator[tuple[str, bytes]], ctx: TaskContext
                 ) -> Iterator[Document]:
    """Every member of the archive ``part`` (``members``: its names and bytes, opened on the first
    one) as the document(s) that file would give in a folder."""
    from corpusforge.extract.detect import HEAD_BYTES, sniff
    from corpusforge.sources.base import Part

    if len(source.members) >= MAX_NESTING:
        ctx.quarantine(part.path, f"archive nested more than {MAX_NESTING} deep inside archives: not read", None)
        return
    try:
        for name, body in members:
            member = Part(f"{part.path}!{name}", f"{part.key}!{name}", size=len(body), mtime=part.mtime)
            if source.media_reading.enabled and sniff(body[:HEAD_BYTES], name).is_media:
                ctx.quarantine(member.path, "media file inside an archive: not read (unpack it to use its media)", None)
                continue
            source.members[member.path] = body
            try:
                yield from source.read_part(member, ctx)
            except CorruptInput as exc:
                ctx.quarantine(exc.location, exc.reason, exc.raw)
            finally:
                del source.members[member.path]
    finally:
        members.close()  # type: ignore[attr-defined]


@INPUT_FORMATS.register("tar")
class TarFormat(InputFormat):
    """tar archives, plain or compressed: each member read as the file it names."""

    extensions = (".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst")
    planned = True
    forceable = False

    def read(self, source: ArchiveReader, part: Part, kind: Kind, data: bytes | None,  # type: ignore[override]
             ctx: TaskContext) -> Iterator[Document]:
        return read_archive(source, part, self._members(source, part, ctx), ctx)

    @staticmethod
    def _members(source: ArchiveReader, part: Part, ctx: TaskContext) -> Iterator[tuple[str, bytes]]:
        raw, stream, _ = source.open(part)
        try:  # the handles are closed whatever fails
            yield from tar_members(stream, part.path, ctx.quarantine, source.max_extract_bytes)
        finally:
            stream.close()
            raw.close()


@INPUT_FORMATS.register("archive")
class ZipFormat(DocumentFormat):
    """zip archives that are no Office, EPUB or ODF file: each member read as the file it names."""

    extensions = (".zip",)
    planned = True
    forceable = False

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        raise ExtractionError("ZIP archive: not supported; unpack it into the source folder")

    def read(self, source: ArchiveReader, part: Part, kind: Kind, data: bytes | None,  # type: ignore[override]
             ctx: TaskContext) -> Iterator[Document]:
        return read_archive(source, part, self._members(source, part, data, ctx), ctx)

    @staticmethod
    def _members(source: ArchiveReader, part: Part, data: bytes | None, ctx: TaskContext
                 ) -> Iterator[tuple[str, bytes]]:
        if data is None:
            raw, stream, _ = source.open(part)
            try:
                data = read_whole(stream, part.path)
            finally:
                stream.close()
                raw.close()
        yield from zip_members(data, part.path, ctx.quarantine, source.expansion_limit(part), part.size,
                               source.max_extract_bytes)
