"""Format readers: bytes of one input part in, documents out, bad records quarantined.

Each reader takes an open binary stream and yields ``(offset, text, fields)``; the source turns
these into Documents (``read_jsonl_documents`` does both for plain JSONL). A bad record raises
nothing: it is handed to ``quarantine(location, reason, raw)`` and reading goes on. A fault that
ends the file (a truncated gzip stream) raises CorruptInput after every complete record before it
has been yielded.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import functools
import io
import re
import string
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson
import pyarrow.parquet as pq
import zstandard

from corpusforge.document import DocIdHasher, Document
from corpusforge.errors import CorruptInput
from corpusforge.redact_urls import redact_url

Record = tuple[int, str, dict[str, Any]]
Quarantine = Callable[[str, str, "bytes | str | None"], None]

CHUNK = 1 << 16  # measured: 64 KB blocks read gzip JSONL ~12% faster per CPU-s than 4 MB ones
_SURROGATE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of undecodable bytes
_STREAM_ERRORS = (EOFError, OSError, zlib.error, zstandard.ZstdError, ValueError)
STREAM_ERRORS = _STREAM_ERRORS


def text_of(fields: dict[str, Any], text_field: str, template: str | None) -> tuple[str | None, str]:
    """The record's text and ``""``, or None and the reason it has none.

    Without a template the text field is removed from ``fields`` (the rest is metadata); with
    one, the text is the template filled from the fields as a person would write them
    (``render_value``). The fields stay in ``fields``: the caller takes its id from them first,
    then drops the ones the template used (``template_fields``).
    """
    if template is None:
        text = fields.pop(text_field, None)
        if not isinstance(text, str):
            return None, f"field {text_field!r} is missing or not a string"
        return text, ""
    try:
        return _TEMPLATE.vformat(template, (), fields), ""
    except KeyError as exc:
        return None, f"text_template field {exc.args[0]!r} is missing"
    except (ValueError, IndexError, AttributeError, TypeError) as exc:
        return None, f"text_template cannot be filled ({exc})"


def render_value(value: Any) -> str:
    """A field value as text a person would write: null is empty, true/false in lower case,
    numbers as written (``str`` of an int, float or Decimal), dates ISO 8601, lists as their
    items joined by ", " (nulls left out, nested lists flattened the same way), objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(render_value(v) for v in value if v is not None)
    if isinstance(value, dict):
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ""  # binary is not text; the SQL source stores it as null too
    return str(value)


class _HumanFormatter(string.Formatter):
    """``str.format`` with fields rendered by ``render_value``; a format spec (``{score:.2f}``)
    applies to the value itself where its type takes one, else to its rendered text, and a number
    written as text (a CSV column) is formatted as that number."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or not format_spec:
            return render_value(value)
        if isinstance(value, (int, float, decimal.Decimal, datetime.date, datetime.time)) and not isinstance(value, bool):
            return format(value, format_spec)
        text = render_value(value)
        try:
            return format(text, format_spec)
        except ValueError:
            if not isinstance(value, str):
                raise
        # A number that arrived as text (a CSV column): ``{score:.2f}`` formats its value.
        try:
            number: int | decimal.Decimal = int(value)
        except ValueError:
            try:
                number = decimal.Decimal(value.strip())
            except decimal.InvalidOperation:
                raise ValueError(f"{value!r} is not a number for format {format_spec!r}") from None
        return format(number, format_spec)


_TEMPLATE = _HumanFormatter()


@functools.lru_cache(maxsize=64)
def template_fields(template: str) -> frozenset[str]:
    """The top-level field names ``template`` uses (``{a.b}`` and ``{a[0]}`` use ``a``)."""
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            names.add(re.split(r"[.\[]", name, maxsplit=1)[0])
    return frozenset(names)


def _utf8_error(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    return ""


def too_large(path: str, quarantine: Quarantine, limit: int) -> Callable[[int, int], None] | None:
    """The ``oversize`` callback that quarantines a record past ``limit`` bytes (None: no limit)."""
    if limit < 0:
        return None

    def report(pos: int, n: int) -> None:
        quarantine(f"{path} byte {pos}", f"document too large: {n:,} bytes (max_document_bytes is {limit:,})", None)

    return report


def iter_line_blocks(
    stream: IO[bytes], path: str, start: int = 0, end: int = -1, max_line: int = -1,
    oversize: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(byte_offset_of_first_line, lines)`` per chunk of about ``CHUNK`` bytes, for every
    line that starts in [start, end).

    A line that starts before ``end`` belongs to this range even if it ends past it; a range
    starting mid-line skips to the next line (the previous range owns it). Handing out whole
    blocks lets readers loop over lines without one generator step per line; small blocks keep
    the decompressed bytes, the lines and their parsing in the CPU cache. Chunks without a newline
    are collected and joined once, so a line far longer than ``CHUNK`` still costs linear time.
    A line past ``max_line`` bytes (when >= 0) is never held: ``oversize(offset, length)`` is
    called once it ends and it is handed out as an empty line (so line numbers stay right).
    """
    pos = start
    # read1 returns what one decompression step yields, so a truncated stream loses no record
    # that was complete before the damage (read(n) would discard its partial result).
    read = getattr(stream, "read1", stream.read)
    head = b""  # bytes read past the skipped partial line, handled first
    if start > 0:
        try:  # a compressed stream decompresses up to ``start``: it may break before
            stream.seek(start - 1)
            if stream.read(1) != b"\n":  # skip to the next line in chunks: the line may be huge
                while (head := read(CHUNK)) and (cut := head.find(b"\n")) < 0:
                    pos += len(head)
                if head:
                    pos, head = pos + cut + 1, head[cut + 1 :]
        except _STREAM_ERRORS:
            # The stream breaks before this range's first line: the range that holds the break
            # reads up to it and quarantines the file once; no line of this range survives.
            return
        if 0 <= end <= pos:
            return
    buf = b""  # the unfinished last line so far
    more: list[bytes] = []  # chunks after ``buf`` that hold no newline
    held = 0  # bytes in buf and more
    skipped = -1  # >= 0: bytes of an over-long line discarded so far
    while True:
        try:
            chunk, head = head or read(CHUNK), b""
        except _STREAM_ERRORS as exc:
            raw = b"".join((buf, *more))
            raise CorruptInput(
                f"{path} byte {pos}", f"compressed stream is truncated or corrupt ({exc})", raw or None
            ) from None
        if not chunk:
            break
        if skipped >= 0:
            cut = chunk.find(b"\n")
            if cut < 0:
                skipped += len(chunk)
                continue
            if oversize is not None:
                oversize(pos, skipped + cut)
            yield pos, [b""]
            pos += skipped + cut + 1
            skipped, chunk = -1, chunk[cut + 1 :]
            if 0 <= end <= pos:
                return
        if b"\n" not in chunk:
            held += len(chunk)
            if 0 <= max_line < held + len(buf):
                skipped, buf, more, held = held + len(buf), b"", [], 0
                continue
            more.append(chunk)
            continue
        held = 0
        if more:
            lines = b"".join((buf, *more, chunk)).split(b"\n")
            more = []
        else:
            lines = (buf + chunk).split(b"\n")
        buf = lines.pop()
        if end >= 0:
            lines = _lines_before(lines, pos, end)
            if not lines:
                return
        yield pos, lines
        pos += sum(map(len, lines)) + len(lines)
        if 0 <= end <= pos:
            return
    if skipped >= 0:
        if oversize is not None:
            oversize(pos, skipped)
        return
    if more:
        buf = b"".join((buf, *more))
    if buf and (end < 0 or pos < end):
        yield pos, [buf]


def _lines_before(lines: list[bytes], pos: int, end: int) -> list[bytes]:
    """The leading lines of a block that start before byte ``end``."""
    for i, line in enumerate(lines):
        if pos >= end:
            return lines[:i]
        pos += len(line) + 1
    return lines


def iter_lines(stream: IO[bytes], path: str, start: int = 0, end: int = -1, max_line: int = -1,
               oversize: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(byte_offset, line)`` for every line that starts in [start, end) (see ``iter_line_blocks``)."""
    for pos, lines in iter_line_blocks(stream, path, start, end, max_line, oversize):
        for line in lines:
            yield pos, line
            pos += len(line) + 1


def read_jsonl(
    stream: IO[bytes],
    path: str,
    quarantine: Quarantine,
    text_field: str,
    start: int = 0,
    end: int = -1,
    template: str | None = None,
    max_bytes: int = -1,
) -> Iterator[Record]:
    """JSON Lines: one object per line, text in ``text_field`` (or ``template`` over the fields);
    other fields become metadata.

    The hot loop: one ``orjson.loads`` and a few checks per line, the record's location formatted
    only when it is quarantined.
    """
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    line_no = 1  # meaningful only for a range that starts at byte 0
    for pos, lines in iter_line_blocks(stream, path, start, end, max_bytes, too_large(path, quarantine, max_bytes)):
        for line in lines:
            here, pos = pos, pos + len(line) + 1
            line_no += 1
            try:
                obj = loads(line)
            except JSONDecodeError as exc:
                if line.strip():
                    quarantine(_where(path, start, line_no - 1, here), _utf8_error(line) or f"malformed JSON: {exc}", line)
                continue
            if type(obj) is dict and template is None:
                text = obj.pop(text_field, None)
                if type(text) is str:
                    yield here, text, obj
                else:
                    quarantine(_where(path, start, line_no - 1, here),
                               f"field {text_field!r} is missing or not a string", line)
                continue
            if not isinstance(obj, dict):
                quarantine(_where(path, start, line_no - 1, here), f"expected a JSON object, got {type(obj).__name__}", line)
                continue
            text, why = text_of(obj, text_field, template)
            if text is None:
                quarantine(_where(path, start, line_no - 1, here), why, line)
                continue
            yield here, text, obj


def read_jsonl_documents(
    stream: IO[bytes],
    path: str,
    quarantine: Quarantine,
    text_field: str,
    source_key: str,
    source_name: str,
    start: int = 0,
    end: int = -1,
    max_bytes: int = -1,
) -> Iterator[Document]:
    """``read_jsonl`` and ``FilesSource._documents`` fused for the common case (no template, no
    id field, no extra metadata): Documents straight from the lines, with the same ids, texts,
    metadata, offsets and quarantine entries, but no record tuple and no second generator per line.
    """
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    make_id, doc = DocIdHasher(source_key), Document
    line_no = 1  # meaningful only for a range that starts at byte 0
    for pos, lines in iter_line_blocks(stream, path, start, end, max_bytes, too_large(path, quarantine, max_bytes)):
        for line in lines:
            here, pos = pos, pos + len(line) + 1
            line_no += 1
            try:
                obj = loads(line)
            except JSONDecodeError as exc:
                if line.strip():
                    quarantine(_where(path, start, line_no - 1, here), _utf8_error(line) or f"malformed JSON: {exc}", line)
                continue
            if type(obj) is not dict:
                quarantine(_where(path, start, line_no - 1, here), f"expected a JSON object, got {type(obj).__name__}", line)
                continue
            text = obj.pop(text_field, None)
            if type(text) is not str:
                quarantine(_where(path, start, line_no - 1, here), f"field {text_field!r} is missing or not a string", line)
                continue
            obj["source_name"] = source_name
            yield doc(text, make_id(here, text), path, here, obj)


def _where(path: str, start: int, line_no: int, pos: int) -> str:
    return f"{path} line {line_no}" if start == 0 else f"{path} byte {pos}"


def read_whole(stream: IO[bytes], path: str, max_bytes: int = -1) -> bytes:
    """All of ``stream``, or CorruptInput naming ``path`` when its compressed stream breaks or it
    holds more than ``max_bytes`` (when >= 0; at most that much plus one byte is read)."""
    try:
        data = stream.read() if max_bytes < 0 else stream.read(max_bytes + 1)
    except _STREAM_ERRORS as exc:
        raise CorruptInput(path, f"compressed stream is truncated or corrupt ({exc})") from None
    if 0 <= max_bytes < len(data):
        raise CorruptInput(path, f"document too large: over {max_bytes:,} bytes (max_document_bytes)")
    return data


def read_json_array(
    stream: IO[bytes], path: str, quarantine: Quarantine, text_field: str, template: str | None = None
) -> Iterator[Record]:
    """A ``.json`` file holding one object or an array of objects."""
    raw = read_whole(stream, path)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Many ".json" corpora are really JSON Lines.
        yield from read_jsonl(io.BytesIO(raw), path, quarantine, text_field, template=template)
        return
    items = data if isinstance(data, list) else [data]
    for i, obj in enumerate(items):
        where = f"{path} item {i}"
        if template is None and (not isinstance(obj, dict) or not isinstance(obj.get(text_field), str)):
            quarantine(where, f"expected an object with a string field {text_field!r}", orjson.dumps(obj)[:2000])
            continue
        if not isinstance(obj, dict):
            quarantine(where, f"expected a JSON object, got {type(obj).__name__}", orjson.dumps(obj)[:2000])
            continue
        text, why = text_of(obj, text_field, template)
        if text is None:
            quarantine(where, why, orjson.dumps(obj)[:2000])
            continue
        yield i, text, obj


def read_text(
    stream: IO[bytes],
    path: str,
    quarantine: Quarantine,
    unit: str,
    encoding_errors: str,
    start: int = 0,
    end: int = -1,
    encoding: str = "auto",
    max_bytes: int = -1,
) -> Iterator[Record]:
    """Plain text: the whole file, each line, or each blank-line-separated paragraph is a document.

    A whole file is decoded by ``charset.decode_text`` (BOM, ``encoding``, UTF-8, detection); the
    encoding goes into metadata when it is not UTF-8. Lines and paragraphs are UTF-8 unless
    ``encoding`` names an ASCII-compatible codec."""
    from corpusforge.extract.charset import UndetectedEncoding, bom_encoding, decode_text

    errors = "replace" if encoding_errors == "replace" else "strict"
    if unit == "file":
        raw = read_whole(stream, path, max_bytes)
        if encoding == "auto" and b"\x00" in raw[:8192] and not bom_encoding(raw):
            quarantine(path, "binary file (NUL bytes), not text", None)
            return
        try:
            text, used = decode_text(raw, encoding, errors)
        except UnicodeDecodeError as exc:
            quarantine(path, f"invalid {encoding if encoding != 'auto' else 'UTF-8'} at byte {exc.start}",
                       raw[max(0, exc.start - 40) : exc.start + 40])
            return
        except UndetectedEncoding as exc:
            quarantine(path, str(exc), raw[:80])
            return
        if not text.strip():
            quarantine(path, "empty file", None)
            return
        yield 0, text, {} if used == "utf-8" else {"encoding": used}
        return
    codec = "utf-8" if encoding == "auto" else encoding

    def decode(pos: int, raw: bytes) -> str | None:
        try:
            return raw.decode(codec, errors)
        except UnicodeDecodeError as exc:
            quarantine(f"{path} byte {pos + exc.start}", f"invalid {codec} at byte {exc.start} of the record", raw)
            return None

    oversize = too_large(path, quarantine, max_bytes)
    lines = iter_lines(stream, path, start, end, max_bytes, oversize)
    if unit == "line":
        for pos, line in lines:
            if pos == 0 and line.startswith(b"\xef\xbb\xbf"):
                line, pos = line[3:], 3
            if line.strip():
                text = decode(pos, line.rstrip(b"\r"))
                if text is not None:
                    yield pos, text, {}
        return
    para: list[bytes] = []
    para_pos = para_bytes = 0
    for pos, line in lines:
        if line.strip():
            if not para:
                para_pos, para_bytes = pos, 0
            para_bytes += len(line) + 1
            if para_bytes > max_bytes >= 0:  # dropped whole: the rest of it up to a blank line too
                if para != [b""] and oversize is not None:
                    oversize(para_pos, para_bytes)
                para = [b""]
                continue
            para.append(line.rstrip(b"\r"))
        elif para == [b""]:
            para = []
        elif para:
            text = decode(para_pos, b"\n".join(para))
            para = []
            if text is not None:
                yield para_pos, text, {}
    if para and para != [b""]:
        text = decode(para_pos, b"\n".join(para))
        if text is not None:
            yield para_pos, text, {}


def read_csv(
    stream: IO[bytes], path: str, quarantine: Quarantine, text_field: str, delimiter: str, template: str | None = None
) -> Iterator[Record]:
    """CSV/TSV with a header row; the ``text_field`` column (or ``template`` over the columns) is
    the text, the other columns metadata."""
    csv.field_size_limit(sys.maxsize)
    fh = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        quarantine(path, "empty file", None)
        return
    except csv.Error as exc:
        raise CorruptInput(path, f"unreadable CSV header: {exc}") from None
    if template is None and text_field not in header:
        raise CorruptInput(path, f"no column {text_field!r}; columns are {', '.join(header)}")
    row_no = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            quarantine(f"{path} line {reader.line_num}", f"malformed CSV: {exc}", None)
            continue
        except _STREAM_ERRORS as exc:
            raise CorruptInput(f"{path} line {reader.line_num}", f"stream is truncated or corrupt ({exc})") from None
        row_no += 1
        where = f"{path} row {row_no}"
        if len(row) != len(header):
            quarantine(where, f"expected {len(header)} fields, got {len(row)}", delimiter.join(row))
            continue
        if any(_SURROGATE.search(c) for c in row):
            quarantine(where, "invalid UTF-8", delimiter.join(row).encode("utf-8", "surrogateescape"))
            continue
        meta = dict(zip(header, row, strict=True))
        text, why = text_of(meta, text_field, template)
        if text is None:
            quarantine(where, why, delimiter.join(row))
            continue
        yield row_no, text, meta


def read_parquet(
    stream: IO[bytes],
    path: str,
    quarantine: Quarantine,
    text_field: str,
    start: int = 0,
    end: int = -1,
    template: str | None = None,
    max_bytes: int = -1,
) -> Iterator[Record]:
    """Row groups [start, end) of a Parquet file; rows whose text is null are quarantined. A
    one-row group whose text column the footer says is over ``max_bytes`` is quarantined as the
    cap would quarantine its document, without reading it (``_refused_unread``)."""
    try:
        pf = pq.ParquetFile(stream)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged footer
        raise CorruptInput(path, f"not a readable Parquet file ({exc})") from None
    if template is not None:
        yield from _parquet_templated(pf, path, quarantine, text_field, start, end, template)
        return
    if text_field not in pf.schema_arrow.names:
        raise CorruptInput(path, f"no column {text_field!r}; columns are {', '.join(pf.schema_arrow.names)}")
    n_groups = pf.metadata.num_row_groups
    stop = n_groups if end < 0 else min(end, n_groups)
    row = sum(pf.metadata.row_group(i).num_rows for i in range(start))
    for rg in range(start, stop):
        if _refused_unread(pf.metadata.row_group(rg), text_field, max_bytes):
            quarantine(f"{redact_url(path)} at {row}", f"document too large: over {max_bytes:,} bytes (max_document_bytes)",
                       None)
            row += 1
            continue
        table = pf.read_row_group(rg)
        texts = table.column(text_field).to_pylist()
        others = {name: table.column(name).to_pylist() for name in table.column_names if name != text_field}
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                quarantine(f"{path} row {row + i}", f"column {text_field!r} is null or not text", None)
                continue
            yield row + i, text, {k: v[i] for k, v in others.items()}
        row += len(texts)


# What a column chunk holds besides its values' bytes (page headers, statistics, length prefixes):
# a one-value chunk over the cap by more than this has a value over the cap.
_CHUNK_OVERHEAD = 64 * 1024


def _refused_unread(group: pq.RowGroupMetaData, column: str, max_bytes: int) -> bool:
    """Whether a one-row group's ``column`` is over ``max_bytes`` by its footer alone, so the row
    is refused without materializing a value of any size (a 200 MB text costs no memory)."""
    if max_bytes < 0 or group.num_rows != 1:
        return False
    for j in range(group.num_columns):
        chunk = group.column(j)
        if chunk.path_in_schema == column:
            return chunk.total_uncompressed_size > max_bytes + _CHUNK_OVERHEAD
    return False


def _parquet_templated(
    pf: pq.ParquetFile, path: str, quarantine: Quarantine, text_field: str, start: int, end: int, template: str
) -> Iterator[Record]:
    n_groups = pf.metadata.num_row_groups
    stop = n_groups if end < 0 else min(end, n_groups)
    row = sum(pf.metadata.row_group(i).num_rows for i in range(start))
    for rg in range(start, stop):
        for i, fields in enumerate(pf.read_row_group(rg).to_pylist()):
            text, why = text_of(fields, text_field, template)
            if text is None:
                quarantine(f"{path} row {row + i}", why, None)
                continue
            yield row + i, text, fields
        row += pf.metadata.row_group(rg).num_rows


def read_arrow(
    stream: IO[bytes], path: str, quarantine: Quarantine, text_field: str, template: str | None = None
) -> Iterator[Record]:
    """Arrow IPC records (``.arrow``/``.feather`` file format, or the ``.ipc`` stream format), like
    Parquet: one record batch in memory at a time; rows whose text is null are quarantined.

    The file format needs random access (a seekable ``stream``); the stream format is read in order.
    """
    import pyarrow as pa

    try:
        head = stream.read(6)
        stream.seek(0)
        if head == b"ARROW1":
            reader = pa.ipc.open_file(stream)
            schema, batches = reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            reader = pa.ipc.open_stream(stream)
            schema, batches = reader.schema, iter(reader)
    except (pa.ArrowException, *_STREAM_ERRORS) as exc:
        raise CorruptInput(path, f"not a readable Arrow IPC file ({exc})") from None
    if template is None and text_field not in schema.names:
        raise CorruptInput(path, f"no column {text_field!r}; columns are {', '.join(schema.names)}")
    row = 0
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, *_STREAM_ERRORS) as exc:
            raise CorruptInput(f"{path} row {row}", f"Arrow IPC data is truncated or corrupt ({exc})") from None
        if batch is None:
            return
        for i, fields in enumerate(batch.to_pylist()):
            if template is None and not isinstance(fields.get(text_field), str):
                quarantine(f"{path} row {row + i}", f"column {text_field!r} is null or not text", None)
                continue
            text, why = text_of(fields, text_field, template)
            if text is None:
                quarantine(f"{path} row {row + i}", why, None)
                continue
            yield row + i, text, fields
        row += batch.num_rows


def pop_dotted(obj: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """Remove and return the value at ``dotted`` (``"content.body"``): a key spelled that way
    first, else the nested path. A parent left empty is removed too, so metadata holds no ``{}``."""
    if dotted in obj:
        return True, obj.pop(dotted)
    head, _, rest = dotted.partition(".")
    child = obj.get(head)
    if not rest or not isinstance(child, dict):
        return False, None
    found, value = pop_dotted(child, rest)
    if found and not child:
        del obj[head]
    return found, value


def read_json_nested(
    stream: IO[bytes], path: str, quarantine: Quarantine, text_field: str, id_field: str | None,
    array: bool, start: int = 0, end: int = -1, max_bytes: int = -1,
) -> Iterator[Record]:
    """JSON Lines (or a ``.json`` array when ``array``) whose ``text_field`` or ``id_field`` is a
    dotted path into nested objects. The id is put back under the dotted name, where the source
    takes ids from; the rest of the object is the metadata."""
    def record(where: str, obj: Any, raw: bytes) -> Record | None:
        if not isinstance(obj, dict):
            quarantine(where, f"expected a JSON object, got {type(obj).__name__}", raw)
            return None
        found, text = pop_dotted(obj, text_field)
        if not found or not isinstance(text, str):
            quarantine(where, f"field {text_field!r} is missing or not a string", raw)
            return None
        if id_field:
            found, doc_id = pop_dotted(obj, id_field)
            if found:
                obj[id_field] = doc_id
        return 0, text, obj

    if array:
        raw = read_whole(stream, path)
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError:  # many ".json" corpora are really JSON Lines: the bytes read, again
            yield from read_json_nested(io.BytesIO(raw), path, quarantine, text_field, id_field, False)
            return
        for i, obj in enumerate(items if isinstance(items, list) else [items]):
            rec = record(f"{path} item {i}", obj, orjson.dumps(obj)[:2000])
            if rec is not None:
                yield i, rec[1], rec[2]
        return
    line_no = 0
    for pos, lines in iter_line_blocks(stream, path, start, end, max_bytes, too_large(path, quarantine, max_bytes)):
        for line in lines:
            here, pos = pos, pos + len(line) + 1
            line_no += 1
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                quarantine(_where(path, start, line_no, here), _utf8_error(line) or f"malformed JSON: {exc}", line)
                continue
            rec = record(_where(path, start, line_no, here), obj, line)
            if rec is not None:
                yield here, rec[1], rec[2]


class _Chain(io.RawIOBase):
    """``prefix`` bytes, then the rest of ``stream``: a CSV stream with its header row replaced."""

    def __init__(self, prefix: bytes, stream: IO[bytes]):
        self._prefix, self._stream = prefix, stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data, self._prefix = self._prefix[: len(view)], self._prefix[len(view):]
        if not data:
            data = getattr(self._stream, "read1", self._stream.read)(len(view))
        view[: len(data)] = data
        return len(data)


def csv_with_header(stream: IO[bytes], delimiter: str, header: bool, columns: list[str] | None) -> IO[bytes]:
    """``stream`` as ``read_csv`` wants it, a header row first: unchanged when the file has one
    and no ``columns`` rename it; else ``columns`` (or ``column_0``, ``column_1`` ... as many as
    the first row has) in place of the file's header row, or before its first row."""
    if header and not columns:
        return stream
    first = stream.readline()
    while first.count(b'"') % 2 and (more := stream.readline()):  # a quoted field runs over lines
        first += more
    if columns is None:
        row = next(csv.reader([first.decode("utf-8-sig", "replace")], delimiter=delimiter), [])
        columns = [f"column_{i}" for i in range(len(row))]
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(columns)
    prefix = out.getvalue().encode("utf-8") + (b"" if header else first)
    return io.BufferedReader(_Chain(prefix, stream))  # type: ignore[return-value]
