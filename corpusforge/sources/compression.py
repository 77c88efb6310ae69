"""Transparent decompression, detected by magic bytes (not by file name)."""

from __future__ import annotations

import bz2
import lzma
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
        return igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]
    if compression == "bz2":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if compression == "xz":
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    raise ValueError(f"unknown compression {compression!r}")
