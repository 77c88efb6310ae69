"""Shard file formats (``sharding.format``), registered in ``SHARD_FORMATS``.

A format turns one shard's tensors into files: ``encode`` returns ``{suffix: bytes}``, the first
suffix being the shard's main file (the one ``shard_index.json`` points to). ``compression``
(zstd, gzip, lz4) wraps every file of the formats that allow it; the loader undoes it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import Any, BinaryIO, ClassVar, Protocol

import numpy as np

from corpusforge.registry import SHARD_FORMATS
from corpusforge.tokenize.special import PAD


class Rows(Protocol):
    """(samples, sequence_length) rows: an array, or rows kept on disk (``SpilledRows``)."""

    def __len__(self) -> int: ...
    def __getitem__(self, rows: slice) -> np.ndarray: ...


# tensors_of(block, names): the named tensors of a block of input_ids rows (all of them for None).
TensorsOf = Callable[[np.ndarray, Collection[str] | None], dict[str, np.ndarray]]

COMPRESSION_SUFFIX = {"zstd": ".zst", "gzip": ".gz", "lz4": ".lz4"}


def compress(data: bytes, compression: str) -> bytes:
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "lz4":
        try:
            import lz4.frame
        except ImportError:
            raise ImportError("lz4 compression needs lz4: pip install 'corpusforge[formats]'") from None
        return lz4.frame.compress(data)
    raise ValueError(f"unknown compression {compression!r}; allowed: none, {', '.join(COMPRESSION_SUFFIX)}")


class ShardFormat(ABC):
    name: ClassVar[str] = "format"
    suffixes: ClassVar[tuple[str, ...]] = ()
    compressible: ClassVar[bool] = True
    # True: an uncompressed shard is written block by block (write_safetensors_streaming), not as bytes.
    streams: ClassVar[bool] = False
    # Stored bytes per token slot given the tensors, used to size shards by max_shard_bytes.
    bytes_per_slot: ClassVar[int | None] = None

    @abstractmethod
    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        """The files of one shard: ``{suffix: content}``, main file first."""


_ST_DTYPES = {np.dtype(np.int32): "I32", np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64",
              np.dtype(np.uint16): "U16", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}  # fmt: skip


def _safetensors_header(specs: list[tuple[str, np.dtype, tuple[int, ...]]], metadata: dict[str, str]) -> bytes:
    """Length prefix and JSON header for tensors ``(name, dtype, shape)`` laid out in that order."""
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    offset = 0
    for name, dtype, shape in specs:
        size = int(np.prod(shape)) * dtype.itemsize
        header[name] = {"dtype": _ST_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned, as the reference writer does
    return struct.pack("<Q", len(head)) + head


def write_safetensors_streaming(
    fh: BinaryIO, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str], block_rows: int = 256,
) -> str:
    """Write the bytes ``safetensors_bytes(tensors_of(rows), metadata)`` would give to ``fh`` in one
    sequential pass, ``block_rows`` rows at a time, and return their sha256 (hex).

    No shard exists whole in memory, as tensors or as bytes, and the file is never read back to be
    hashed. ``rows`` is an array or anything with ``len`` and row slicing (``SpilledRows``).
    ``tensors_of(block, names)`` gives the tensors ``names`` of a block and must work row by row
    (every tensor row depends on its own input row only), which holds for ``sample_tensors``.
    """
    first = tensors_of(rows[:1], None)
    specs = [(name, first[name].dtype, (len(rows), *first[name].shape[1:])) for name in sorted(first)]
    digest = hashlib.sha256()

    def put(data: bytes | memoryview) -> None:
        fh.write(data)
        digest.update(data)

    put(_safetensors_header(specs, metadata))
    for name, _, _ in specs:  # tensor after tensor, as they lie in the file
        for lo in range(0, len(rows), block_rows):
            arr = np.ascontiguousarray(tensors_of(rows[lo : lo + block_rows], (name,))[name])
            put(arr.astype(arr.dtype.newbyteorder("<"), copy=False).data)
    return digest.hexdigest()


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A SafeTensors file with sorted header keys, so equal input gives equal bytes.

    ``safetensors.numpy.save`` keeps the metadata in a Rust HashMap whose order changes from
    process to process, which made identical shards differ in their checksums.
    """
    arrays = [(name, np.ascontiguousarray(tensors[name])) for name in sorted(tensors)]
    head = _safetensors_header([(name, arr.dtype, arr.shape) for name, arr in arrays], metadata)
    return b"".join([head, *(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes() for _, arr in arrays)])


@SHARD_FORMATS.register("safetensors")
class SafeTensorsFormat(ShardFormat):
    """Every tensor in one SafeTensors file, the run's metadata in its header (default).

    Uncompressed shards are written by ``write_safetensors_streaming`` (see ``ShardWriter``).
    """

    suffixes = (".safetensors",)
    streams = True

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        return {".safetensors": safetensors_bytes(tensors, metadata)}


@SHARD_FORMATS.register("npy")
class NpyFormat(ShardFormat):
    """``input_ids`` only, as one (samples, sequence_length) int32 ``.npy``; the loader derives the rest."""

    suffixes = (".npy",)
    bytes_per_slot = 4

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        buf = io.BytesIO()
        np.save(buf, tensors["input_ids"], allow_pickle=False)
        return {".npy": buf.getvalue()}


@SHARD_FORMATS.register("parquet")
class ParquetFormat(ShardFormat):
    """One row per sample, one list<int> column per tensor (HF ``datasets`` reads it); zstd inside."""

    suffixes = (".parquet",)
    compressible = False

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {}
        for name, arr in tensors.items():
            n, length = arr.shape
            offsets = pa.array(np.arange(0, (n + 1) * length, length, dtype=np.int32))
            cols[name] = pa.ListArray.from_arrays(offsets, pa.array(arr.reshape(-1)))
        table = pa.table(cols).replace_schema_metadata({f"corpusforge.{k}": v for k, v in metadata.items()})
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd", row_group_size=1024)
        return {".parquet": buf.getvalue()}


MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
                        np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.float32): 7,
                        np.dtype(np.uint16): 8}  # fmt: skip


@SHARD_FORMATS.register("megatron")
class MegatronFormat(ShardFormat):
    """Megatron-LM ``MMapIndexedDataset``: ``.bin`` tokens and ``.idx`` index (version 1).

    Each sample row, without its padding, is one sequence and one document (``doc_idx`` is
    0..samples): rows are already packed, and Megatron's GPT dataset re-samples sequences anyway.
    """

    suffixes = (".bin", ".idx")
    compressible = False
    bytes_per_slot = 4

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        ids = tensors["input_ids"]
        keep = ids != PAD
        lengths = keep.sum(axis=1).astype(np.int32)
        tokens = ids[keep].astype(np.int32)  # row-major, so rows stay in order
        pointers = (np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]]) * tokens.itemsize).astype(np.int64)
        doc_idx = np.arange(len(ids) + 1, dtype=np.int64)
        idx = b"".join([
            MEGATRON_HEADER,
            struct.pack("<Q", 1),
            struct.pack("<B", MEGATRON_DTYPE_CODES[tokens.dtype]),
            struct.pack("<Q", len(lengths)),
            struct.pack("<Q", len(doc_idx)),
            lengths.tobytes(), pointers.tobytes(), doc_idx.tobytes(),
        ])  # fmt: skip
        return {".bin": tokens.tobytes(), ".idx": idx}


def get_format(name: str) -> Any:
    return SHARD_FORMATS.get(name, where="sharding.format")()
