"""Transparent decompression, detected by magic bytes (not by file name)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from typing import IO

import zstandard
from isal import igzip

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
}
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz")


def sniff_compression(head: bytes) -> str | None:
    """Name of the compression whose magic number starts ``head``, or None for plain bytes."""
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def strip_compression_suffix(path: str) -> str:
    for suffix in COMPRESSED_SUFFIXES:
        if path.lower().endswith(suffix):
            return path[: -len(suffix)]
    return path


def decompressing_reader(raw: IO[bytes], compression: str | None) -> IO[bytes]:
    """Wrap a binary file object so reads return decompressed bytes.

    gzip goes through ISA-L (igzip), about 2-3x faster than zlib, which is what keeps reading
    gzip JSONL above 150 MB/s per core.
    """
    if compression is None:
        return raw
    if compression == "gzip":
        return _SalvagingGzip(raw)  # type: ignore[return-value]
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]
    if compression == "bz2":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if compression == "xz":
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    raise ValueError(f"unknown compression {compression!r}")


class _SalvagingGzip:
    """ISA-L gzip for speed; on a damaged stream, the standard library recovers the intact prefix.

    igzip raises without returning what it decompressed before the damage; ``gzip.GzipFile.read1``
    returns it first. So on an error the stream is reopened with ``gzip``, the bytes already
    delivered are skipped, and reading goes on until the standard library reports the damage.
    """

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self._f: IO[bytes] = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        self._pos = 0
        self._salvaging = False

    def _salvage(self) -> None:
        self._salvaging = True
        self.raw.seek(0)
        self._f = gzip.GzipFile(fileobj=self.raw, mode="rb")
        left = self._pos
        while left > 0:
            got = self._f.read(min(left, 1 << 22))
            if not got:
                break
            left -= len(got)

    def read1(self, n: int = -1) -> bytes:
        try:
            data = self._f.read1(n)
        except (EOFError, OSError, zlib.error):
            if self._salvaging:
                raise
            self._salvage()
            data = self._f.read1(n)
        self._pos += len(data)
        return data

    read = read1

    def readline(self) -> bytes:
        line = self._f.readline()
        self._pos += len(line)
        return line

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._f.seek(offset, whence)
        return self._pos

    def close(self) -> None:
        self._f.close()
