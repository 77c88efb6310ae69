"""Transparent decompression, detected by magic bytes (not by file name), with an expansion limit.

``decompressing_reader`` turns a compressed binary file into a ``DecompressedStream``: a
read-only ``io.BufferedIOBase`` (read to EOF, read(n) up to n, read1 one decompression step,
readinto, readline, seek/tell, close, context manager), so csv, TextIOWrapper, pyarrow and the
line readers all see one real file. It stops with ``ExpansionLimitExceeded`` once the output
passes ``expansion_limit`` bytes, before the bytes past the limit are held anywhere.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import IO, Any

import zstandard
from isal import igzip

from corpusforge.errors import CorruptInput

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"\x04\x22\x4d\x18": "lz4",  # the LZ4 frame format (lz4 package, ``[formats]`` extra)
}
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz", ".lz4")

# Text compresses 3-5x with gzip and up to ~10x with xz/zstd -19; repetitive logs reach 20-50x.
# 100x leaves twice the worst of those; zero-filled bombs run at 1,000x (deflate's ceiling is
# 1,032x) to over 10,000x (zstd, bz2, xz). The floor lets small files expand freely: 64 MiB is
# harmless to hold, whatever the ratio.
DEFAULT_MAX_EXPANSION_RATIO = 100.0
DEFAULT_EXPANSION_FLOOR_BYTES = 64 * 1024 * 1024
_STEP = 1 << 16  # bytes asked of the decompressor per step: the most any step holds past the limit


class ExpansionLimitExceeded(CorruptInput):
    """A compressed input (a stream or a ZIP container) decompresses past its expansion limit."""


def expansion_limit(compressed_bytes: int, ratio: float | None, floor: int) -> int | None:
    """The most bytes a file of ``compressed_bytes`` may decompress to: ``ratio`` times its size,
    never less than ``floor``; None (no limit) when ``ratio`` is None."""
    if ratio is None:
        return None
    return max(int(floor), int(ratio * max(0, compressed_bytes)))


def expansion_reason(limit: int, compressed_bytes: int) -> str:
    """The quarantine reason for an input that expands past ``limit``."""
    return (f"expands past {limit} bytes (from {compressed_bytes} compressed bytes; the limit is "
            f"max_expansion_ratio x compressed size, at least expansion_floor_bytes): a decompression bomb?")


def gzip_is_per_record(raw: IO[bytes], probe: int = 1 << 22) -> bool:
    """Whether a gzip WARC is one member per record (what warcio reads, with offsets of the
    compressed file) rather than one stream over the whole archive, which warcio refuses.

    Per record: the first member ends within ``probe`` decompressed bytes and more follows, or
    the file ends inside it (a clipped download, which warcio reports as a truncated record).
    One stream: the first member runs past ``probe`` or is the whole file. ``raw`` is left at 0.
    """
    raw.seek(0)
    inflate = zlib.decompressobj(31)
    left = probe
    try:
        while not inflate.eof:
            chunk = inflate.unconsumed_tail or raw.read(1 << 16)
            if not chunk:
                return True
            left -= len(inflate.decompress(chunk, 1 << 16))
            if left <= 0 and not inflate.eof:
                return False
        return bool(inflate.unused_data or raw.read(1))
    except zlib.error:
        return True
    finally:
        raw.seek(0)


def sniff_compression(head: bytes) -> str | None:
    """Name of the compression whose magic number starts ``head``, or None for plain bytes."""
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def strip_compression_suffix(path: str) -> str:
    """``path`` without a compression suffix, and for an http(s) URL without its query and fragment
    (``data.jsonl.gz?api_key=K`` is a gzip JSONL file): what a file's format is read from."""
    if path[:8].lower().startswith(("http://", "https://")):
        path = path.split("#", 1)[0].split("?", 1)[0]
    for suffix in COMPRESSED_SUFFIXES:
        if path.lower().endswith(suffix):
            return path[: -len(suffix)]
    return path


def decompressing_reader(
    raw: IO[bytes], compression: str | None, limit: int | None = None, name: str = "", compressed_bytes: int = 0
) -> IO[bytes]:
    """Wrap a binary file object (positioned at 0) so reads return decompressed bytes.

    ``limit`` caps the decompressed bytes (``expansion_limit``); ``name`` and
    ``compressed_bytes`` go into the error that says so. Plain bytes are returned as they are.
    """
    if compression is None:
        return raw
    if compression not in ("gzip", "zstd", "bz2", "xz", "lz4"):
        raise ValueError(f"unknown compression {compression!r}")
    return DecompressedStream(raw, compression, limit, name, compressed_bytes)  # type: ignore[return-value]


class DecompressedStream(io.BufferedIOBase):
    """Decompressed bytes of ``raw`` with the whole read-only ``io`` interface.

    gzip goes through ISA-L (igzip), about 2-3x faster than zlib, which is what keeps reading
    gzip JSONL above 150 MB/s per core. igzip raises without returning what it decompressed
    before a damaged spot; ``gzip.GzipFile.read1`` returns it first, so on an error the stream
    is reopened with ``gzip``, the bytes already produced are skipped, and reading goes on until
    the standard library reports the damage: every byte before it is delivered. zstd's stream
    reader ends a truncated frame silently, so its compressed bytes are followed by
    ``_ZstdFrames`` and a stream that stops inside a frame raises EOFError, as bz2 and xz do.
    """

    def __init__(self, raw: IO[bytes], compression: str, limit: int | None, name: str, compressed_bytes: int):
        super().__init__()
        self.raw, self.compression, self.limit = raw, compression, limit
        self.name = name or str(getattr(raw, "path", None) or getattr(raw, "name", ""))
        self.compressed_bytes = compressed_bytes
        self._salvaging = False
        self._open()

    def _open(self) -> None:
        self._produced = 0  # bytes taken from the decompressor
        self._pos = 0  # bytes handed to the caller
        self._buf = b""  # produced, not yet handed out (readline's look-ahead)
        self._frames: _ZstdFrames | None = None
        self._inner: Any
        if self.compression == "gzip":
            self._inner = (gzip.GzipFile if self._salvaging else igzip.IGzipFile)(fileobj=self.raw, mode="rb")
        elif self.compression == "zstd":
            self._frames = _ZstdFrames(self.raw)
            self._inner = zstandard.ZstdDecompressor().stream_reader(
                self._frames, read_across_frames=True, closefd=False)
        elif self.compression == "bz2":
            self._inner = bz2.BZ2File(self.raw)
        elif self.compression == "lz4":
            self._inner = _lz4_frame(self.name).LZ4FrameFile(self.raw, mode="rb")
        else:
            self._inner = lzma.LZMAFile(self.raw)

    def _rewind(self) -> None:
        self._inner.close()
        self.raw.seek(0)
        self._open()

    def _salvage(self) -> None:
        produced, pos, buf = self._produced, self._pos, self._buf
        self._salvaging = True
        self._rewind()
        left = produced
        while left > 0:
            got = self._inner.read1(min(left, 1 << 22))
            if not got:
                break
            left -= len(got)
        self._produced, self._pos, self._buf = produced, pos, buf

    def _step(self, n: int) -> bytes:
        """At most ``n`` (> 0) new bytes from one decompression step; b"" at the end."""
        try:
            data = self._inner.read1(n)
        except RuntimeError as exc:  # how the lz4 library reports a damaged frame
            raise OSError(f"lz4: {exc}") from None
        except (EOFError, OSError, zlib.error):
            if self.compression != "gzip" or self._salvaging:
                raise
            self._salvage()
            data = self._inner.read1(n)
        if not data and self._frames is not None and not self._frames.complete:
            raise EOFError("zstd stream ends inside a frame (truncated)")
        self._produced += len(data)
        if self.limit is not None and self._produced > self.limit:
            raise ExpansionLimitExceeded(self.name, expansion_reason(self.limit, self.compressed_bytes))
        return data

    # -- io interface ------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self.raw, "seekable", lambda: False)())

    def read1(self, n: int = -1) -> bytes:
        self._check_open()
        if n == 0:
            return b""
        if self._buf:
            data = self._buf if n < 0 else self._buf[:n]
            self._buf = self._buf[len(data):]
        else:
            data = self._step(n if n > 0 else _STEP)
        self._pos += len(data)
        return data

    def read(self, n: int | None = -1) -> bytes:
        self._check_open()
        pieces: list[bytes] = []
        left = -1 if n is None or n < 0 else n
        while left != 0:
            got = self.read1(1 << 20 if left < 0 else min(left, 1 << 22))
            if not got:
                break
            pieces.append(got)
            if left > 0:
                left -= len(got)
        return b"".join(pieces)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readinto1(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self.read1(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        """One line with its newline, or at most ``size`` bytes; never more than a step past it."""
        self._check_open()
        limit = -1 if size is None or size < 0 else size
        pieces: list[bytes] = []
        got = 0
        while limit < 0 or got < limit:
            chunk = self._buf or self._step(_STEP)
            self._buf = b""
            if not chunk:
                break
            want = len(chunk) if limit < 0 else limit - got
            cut = chunk.find(b"\n", 0, want)
            end = cut + 1 if cut >= 0 else min(want, len(chunk))
            pieces.append(chunk[:end])
            self._buf = chunk[end:]
            got += end
            if cut >= 0:
                break
        self._pos += got
        return b"".join(pieces)

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Forward seeks decompress and discard; a backward seek starts again from byte 0."""
        self._check_open()
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            while self.read1(1 << 20):
                pass
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise ValueError(f"invalid whence {whence!r}")
        target = max(0, offset)
        if target < self._pos:
            self._rewind()
        while self._pos < target and self.read1(min(target - self._pos, 1 << 20)):
            pass
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed file")


def _lz4_frame(name: str) -> Any:
    """The lz4 frame module, or CorruptInput (a one-line quarantine of ``name``) naming the extra."""
    try:
        import lz4.frame
    except ImportError:
        raise CorruptInput(name, "an lz4 input: the lz4 package is needed to read it: pip install 'corpusforge[formats]'") from None
    return lz4.frame


class _ZstdFrames:
    """The compressed bytes of a zstd stream, read through, with their frame structure followed
    (RFC 8878: frame header, block headers, checksum; skippable frames) to tell a stream that
    ends between frames from one cut inside a frame. Only headers are parsed; block contents
    are skipped over by count."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self._need = 4  # header bytes the current state waits for
        self._state = "magic"
        self._pending = b""
        self._skip = 0  # content bytes to pass over
        self._checksum = False
        self._lost = False  # not a zstd structure we follow: the decompressor reports it

    @property
    def complete(self) -> bool:
        return self._lost or (self._state == "magic" and not self._pending and not self._skip)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data and not self._lost:
            self._feed(data)
        return data

    def _feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n and not self._lost:
            if self._skip:
                take = min(self._skip, n - i)
                self._skip -= take
                i += take
                continue
            take = min(self._need - len(self._pending), n - i)
            self._pending += data[i : i + take]
            i += take
            if len(self._pending) == self._need:
                header, self._pending = self._pending, b""
                self._advance(header)

    def _advance(self, h: bytes) -> None:
        if self._state == "magic":
            if h == b"\x28\xb5\x2f\xfd":
                self._state, self._need = "descriptor", 1
            elif h[0] & 0xF0 == 0x50 and h[1:] == b"\x2a\x4d\x18":
                self._state, self._need = "skippable", 4
            else:
                self._lost = True
        elif self._state == "skippable":
            self._skip = int.from_bytes(h, "little")
            self._state, self._need = "magic", 4
        elif self._state == "descriptor":
            fcs_flag, single, did_flag = h[0] >> 6, (h[0] >> 5) & 1, h[0] & 3
            self._checksum = bool((h[0] >> 2) & 1)
            rest = (0 if single else 1) + (0, 1, 2, 4)[did_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
            self._state, self._need = "block", 3
            self._skip = rest
        else:  # block header: last-block bit, type, size
            value = int.from_bytes(h, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            self._skip = 1 if kind == 1 else size
            if last:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4
