"""Shard file formats (``sharding.format``): the registry ``SHARD_FORMATS`` and lookups in it.

Each format is one class following the contract in ``corpusforge.shards.contract`` (write, read,
capability flags), in a module of its own: ``safetensors_format``, ``npy_format``,
``parquet_format``, ``megatron_format``, ``webdataset_format``. This module imports the built-in
ones, finds a format by name (``get_format``) or by a shard's file name (``shard_kind``), and keeps
the names other modules import from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corpusforge.registry import SHARD_FORMATS
from corpusforge.shards.contract import (
    BLOCK_ROWS,
    COMPRESSION_SUFFIX,
    COMPRESSIONS,
    OpenFile,
    RawWriter,
    Rows,
    ShardFormat,
    Sink,
    TensorsOf,
    compress,
    split_compression,
    write_shard,
)
from corpusforge.shards.megatron_format import MEGATRON_DTYPE_CODES, MEGATRON_HEADER, MegatronFormat
from corpusforge.shards.npy_format import NpyFormat
from corpusforge.shards.parquet_format import ParquetFormat
from corpusforge.shards.safetensors_format import (
    SafeTensorsFormat,
    _safetensors_header,
    safetensors_bytes,
    write_safetensors_streaming,
)

__all__ = [
    "BLOCK_ROWS", "COMPRESSIONS", "COMPRESSION_SUFFIX", "MEGATRON_DTYPE_CODES", "MEGATRON_HEADER", "MegatronFormat",
    "NpyFormat", "OpenFile", "ParquetFormat", "RawWriter", "Rows", "SafeTensorsFormat", "ShardFormat", "Sink",
    "TensorsOf", "_safetensors_header", "compress", "format_class", "format_names", "get_format",
    "safetensors_bytes", "shard_kind", "write_safetensors_streaming", "write_shard",
]  # fmt: skip


def format_names() -> list[str]:
    """The registered ``sharding.format`` names, sorted (built-ins, modules of this package, plugins)."""
    return SHARD_FORMATS.names()


def format_class(name: str) -> type[ShardFormat]:
    """The registered format class ``name``; an unknown name is a ``RecipeError`` listing the registered ones."""
    cls: type[ShardFormat] = SHARD_FORMATS.get(name, where="sharding.format")
    return cls


def get_format(name: str) -> Any:
    """A fresh writer of format ``name`` (its ``token_dtype`` is set per run)."""
    return format_class(name)()


def shard_kind(path: str | Path) -> tuple[str, str]:
    """``(format, compression)`` of a shard by its main file's name: ``("npy", "zstd")`` for
    ``shard_00000.npy.zst``, ``("megatron", "none")`` for ``shard_00000.bin``."""
    name, compression = split_compression(path)
    mains = sorted(((format_class(f).suffixes[0], f) for f in format_names()), key=lambda sf: -len(sf[0]))
    for suffix, fmt in mains:
        if name.endswith(suffix):
            return fmt, compression
    raise ValueError(f"{path}: unknown shard format; the loader reads {', '.join(s for s, _ in sorted(mains))}")
