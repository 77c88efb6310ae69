"""WARC and ARC archives (gzip or not): HTTP response records to extracted page text.

Each response record with a 2xx status and an HTML (or plain-text) body becomes one document;
its byte offset in the archive is the document offset, and the target URI, HTTP status,
content type, WARC date and record id go into metadata (ARC records have no id: warcio invents a
random one when it converts them, which would make the output differ between runs, so none is kept). A ``conversion`` record (Common Crawl
WET: the page's text, UTF-8 by the WET format) is one document with its text as it is. Other
records (warcinfo, requests, metadata, revisits, images, redirects) are skipped, each counted by
``skipped(reason)``. A damaged archive yields every record before the damage and
then raises CorruptInput, which the source turns into a quarantine entry; a record cut short
(fewer bytes than its Content-Length) is quarantined as a truncated record.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, ClassVar

from corpusforge.errors import CorruptInput
from corpusforge.extract.base import ExtractionError, require
from corpusforge.extract.html import extract_html
from corpusforge.sources.compression import ExpansionLimitExceeded, expansion_reason, gzip_is_per_record
from corpusforge.sources.input_formats import INPUT_FORMATS, Detect, InputFormat
from corpusforge.sources.readers import Quarantine, Record

if TYPE_CHECKING:
    from corpusforge.document import Document
    from corpusforge.extract.detect import Kind
    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.base import Part
    from corpusforge.sources.files import FilesSource

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_CONTENT_RECORDS = ("response", "resource", "conversion")
_WARC_META = (("WARC-Date", "warc_date"), ("WARC-Record-ID", "warc_record_id"),
              ("WARC-Refers-To", "warc_refers_to"),
              ("WARC-Identified-Content-Language", "warc_identified_content_language"))


def _charset(content_type: str) -> str | None:
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


def _peek_arc(stream: IO[bytes]) -> tuple[IO[bytes], bool]:
    """``stream`` unchanged for reading, and whether it is an ARC file (``filedesc://`` first, gzip or not)."""
    head = stream.read(4096)
    chained = io.BufferedReader(_Prepend(head, stream))
    text = head
    if head[:2] == b"\x1f\x8b":
        try:
            text = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error:
            text = b""
    return chained, text.lstrip().startswith(b"filedesc://")


class _Prepend(io.RawIOBase):
    """``head`` then the rest of ``stream``: the bytes a peek took, given back."""

    def __init__(self, head: bytes, stream: IO[bytes]):
        self.head, self.stream = memoryview(head), stream

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.stream.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def read_warc(
    stream: IO[bytes], path: str, quarantine: Quarantine, favor_precision: bool = True,
    max_body_bytes: int | None = None, compressed_bytes: int = 0,
    skipped: Callable[[str], None] | None = None,
) -> Iterator[Record]:
    """``(offset, text, metadata)`` for every extractable response, resource or conversion (WET)
    record of a WARC/ARC stream; ``skipped`` is told why each other record yields no document.

    A record body longer than ``max_body_bytes`` (the archive's expansion limit: warcio inflates
    gzip records itself) ends the archive with ExpansionLimitExceeded, before it is held whole.
    """
    require("warcio", "extract")
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    skip = skipped or (lambda reason: None)
    stream, arc = _peek_arc(stream)
    it = ArchiveIterator(stream, arc2warc=True)
    offset = 0
    try:
        for record in it:
            if record.rec_type not in _CONTENT_RECORDS:
                skip(f"{record.rec_type} record")
                continue
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            meta: dict[str, Any] = {"url": uri, "warc_type": record.rec_type}
            for header, key in _WARC_META:
                value = record.rec_headers.get_header(header)
                if value and not (arc and header == "WARC-Record-ID"):
                    meta[key] = value
            if record.http_headers is not None and record.rec_type == "response":
                status = record.http_headers.get_statuscode()
                ctype = record.http_headers.get_header("Content-Type") or ""
                try:
                    meta["http_status"] = int(status)
                except (TypeError, ValueError):
                    meta["http_status"] = 0
                if not 200 <= meta["http_status"] < 300:
                    skip("response status not 2xx")
                    continue
            else:
                ctype = record.rec_headers.get_header("Content-Type") or ""
            mime = ctype.split(";")[0].strip().lower()
            meta["content_type"] = mime
            if mime not in _HTML_TYPES and mime != "text/plain":
                skip(f"{record.rec_type} of type {mime or 'unknown'}")
                continue
            body = record.content_stream().read(None if max_body_bytes is None else max_body_bytes + 1)
            if max_body_bytes is not None and len(body) > max_body_bytes:
                raise ExpansionLimitExceeded(path, expansion_reason(max_body_bytes, compressed_bytes)
                                             + f" (record at byte {it.get_record_offset()})")
            missing = getattr(record.raw_stream, "limit", 0)  # bytes the header promised but the file lacks
            offset = it.get_record_offset()  # only valid once the record has been read
            where = f"{path} record at byte {offset}"
            if missing > 0:
                quarantine(where, f"truncated WARC record ({missing} bytes missing; {uri})", None)
                continue
            if not body.strip():
                skip(f"{record.rec_type} with an empty body")
                continue
            if mime == "text/plain":
                try:
                    # A WET conversion record is UTF-8 by definition, whatever it declares.
                    charset = "utf-8" if record.rec_type == "conversion" else _charset(ctype) or "utf-8"
                    text = body.decode(charset)
                except (UnicodeDecodeError, LookupError):
                    quarantine(where, "undecodable text/plain body", body[:200])
                    continue
                yield offset, text, meta
                continue
            try:
                page = extract_html(body, uri or None, _charset(ctype), favor_precision)
            except ExtractionError as exc:
                quarantine(where, f"{exc} ({uri})", None)
                continue
            page.metadata.update(meta)
            yield offset, page.text, page.metadata
    except (ArchiveLoadFailed, EOFError, OSError, zlib.error, ValueError) as exc:
        raise CorruptInput(f"{path} byte {offset}", f"damaged WARC/ARC archive ({type(exc).__name__}: {exc})") from None


@INPUT_FORMATS.register("warc")
class WarcFormat(InputFormat):
    """WARC/ARC web archives: each HTML response record one document (``read_warc``)."""

    extensions = (".warc", ".arc")
    detect: ClassVar[Detect] = "content"

    def read(self, source: FilesSource, part: Part, kind: Kind, data: bytes | None, ctx: TaskContext
             ) -> Iterator[Document]:
        raw, stream, plain = source.open(part)
        try:
            # warcio reads gzip per record itself, so offsets are those of the compressed file;
            # zstd, bz2 and xz archives are read decompressed (offsets of the decompressed bytes).
            per_record = plain or (getattr(stream, "compression", "") == "gzip" and gzip_is_per_record(raw))
            records = read_warc(raw if per_record else stream, part.path, ctx.quarantine,
                                source.favor_precision, source.expansion_limit(part), part.size,
                                lambda why: ctx.count(source, f"warc records skipped: {why}"))
            yield from source.documents_of(part, records, {"format": "warc"})
        finally:
            stream.close()
            raw.close()
