"""Shard file formats (``sharding.format``), registered in ``SHARD_FORMATS``.

A format writes one shard's files from its rows (``write``), block by block through sinks that
compress and hash on the way (``write_shard``), so no format holds a shard in memory; the first
suffix is the shard's main file (the one ``shard_index.json`` points to). ``encode`` gives the same
files as bytes. ``compression`` (zstd, gzip, lz4) wraps every file of the formats that allow it;
the loader undoes it.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

import numpy as np

from corpusforge.registry import SHARD_FORMATS
from corpusforge.state import atomic_path
from corpusforge.tokenize.special import PAD


class Rows(Protocol):
    """(samples, sequence_length) rows: an array, or rows kept on disk (``SpilledRows``)."""

    def __len__(self) -> int: ...
    def __getitem__(self, rows: slice) -> np.ndarray: ...


# tensors_of(block, names): the named tensors of a block of input_ids rows (all of them for None).
TensorsOf = Callable[[np.ndarray, Collection[str] | None], dict[str, np.ndarray]]

# open_file(suffix, size): a sink for the shard file of that suffix, ``size`` its uncompressed bytes
# (None where unknown before writing; zstd records a known size in its frame header).
OpenFile = Callable[[str, "int | None"], AbstractContextManager[Any]]

# Rows per block when a shard is streamed: 256 x 2048 int32 is 2 MB per tensor.
BLOCK_ROWS = 256

COMPRESSION_SUFFIX = {"zstd": ".zst", "gzip": ".gz", "lz4": ".lz4"}


def compress(data: bytes, compression: str) -> bytes:
    """``data`` as one file of ``compression``, the bytes a ``Sink`` writes for it."""
    buf = io.BytesIO()
    sink = Sink(buf, compression, len(data))
    sink.write(data)
    sink.close()
    return buf.getvalue()


class Sink:
    """A shard file being written: compresses (``compression``) and then counts and sha256-hashes
    the bytes that reach ``fh``, so a file is never read back to be checksummed."""

    def __init__(self, fh: BinaryIO, compression: str = "none", size: int | None = None):
        self._fh, self._sha, self.size, self.written = fh, hashlib.sha256(), 0, 0
        self._expected = size
        self._compressor: Any = None
        self._end: Callable[[], bytes] = bytes
        if compression == "zstd":
            import zstandard

            c = zstandard.ZstdCompressor(level=3).compressobj(size=-1 if size is None else size)
            self._compressor, self._end = c.compress, c.flush
        elif compression == "gzip":  # a gzip member with no name and mtime 0: the same bytes every run
            c = zlib.compressobj(6, zlib.DEFLATED, 31)
            self._compressor, self._end = c.compress, c.flush
        elif compression == "lz4":
            try:
                import lz4.frame
            except ImportError:
                raise ImportError("lz4 compression needs lz4: pip install 'corpusforge[formats]'") from None
            c = lz4.frame.LZ4FrameCompressor()
            self._put(c.begin(source_size=size or 0))
            self._compressor, self._end = c.compress, c.flush
        elif compression != "none":
            raise ValueError(f"unknown compression {compression!r}; allowed: none, {', '.join(COMPRESSION_SUFFIX)}")

    def write(self, data: bytes | memoryview) -> int:
        n = memoryview(data).nbytes
        self.written += n
        self._put(self._compressor(data) if self._compressor else data)
        return n

    def close(self) -> None:
        """Finish the compressed stream; check the size announced when the file was opened."""
        self._put(self._end())
        if self._expected is not None and self.written != self._expected:
            raise AssertionError(f"shard file: wrote {self.written} bytes, announced {self._expected}")

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def _put(self, data: bytes | memoryview) -> None:
        if n := memoryview(data).nbytes:
            self._fh.write(data)
            self._sha.update(data)
            self.size += n


class _Raw(io.RawIOBase):
    """A write-only file whose bytes go to ``put``, for a writer that wants a real file object
    (pyarrow's ParquetWriter); closing it leaves the sink behind it open."""

    def __init__(self, put: Callable[[bytes | memoryview], Any]):
        self._put, self._at = put, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._put(data)
        n = memoryview(data).nbytes
        self._at += n
        return n

    def tell(self) -> int:
        return self._at


def write_shard(fmt: ShardFormat, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str], compression: str,
                target: Callable[[str], Path], atomic: bool = True) -> list[tuple[Path, int, str]]:
    """Write one shard's files, ``target(suffix)`` being each one's path (compression suffix included),
    under a temporary name renamed into place when ``atomic``; ``(path, bytes, sha256)`` of each file."""
    written: list[tuple[Path, int, str]] = []

    @contextmanager
    def open_file(suffix: str, size: int | None) -> Iterator[Sink]:
        path = target(suffix)
        with atomic_path(path) if atomic else nullcontext(path) as tmp, open(tmp, "wb") as fh:
            sink = Sink(fh, compression, size)
            yield sink
            sink.close()
        written.append((path, sink.size, sink.hexdigest()))

    fmt.write(open_file, rows, tensors_of, metadata)
    return written


class ShardFormat(ABC):
    name: ClassVar[str] = "format"
    suffixes: ClassVar[tuple[str, ...]] = ()
    compressible: ClassVar[bool] = True
    # Stored bytes per token slot given the tensors, used to size shards by max_shard_bytes.
    bytes_per_slot: ClassVar[int | None] = None
    # How input_ids are stored: int32, or uint16 where the vocabulary fits (half the bytes).
    token_dtype: np.dtype = np.dtype("<i4")

    def stored(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``tensors`` with ``input_ids`` narrowed to uint16 storage when asked (ids were checked to fit)."""
        if "input_ids" in tensors and self.token_dtype.itemsize == 2:
            return {**tensors, "input_ids": tensors["input_ids"].astype(self.token_dtype)}
        return tensors

    @abstractmethod
    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        """The files of one shard: ``{suffix: content}``, main file first."""

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        """Write one shard's files through ``open_file``, main file first. This default holds the
        shard in memory (``encode``); the built-in formats stream ``BLOCK_ROWS`` rows at a time."""
        for suffix, data in self.encode(tensors_of(rows[: len(rows)], None), metadata).items():
            with open_file(suffix, len(data)) as fh:
                fh.write(data)


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
    open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str], block_rows: int = BLOCK_ROWS,
) -> None:
    """Write the bytes ``safetensors_bytes(tensors_of(rows), metadata)`` would give as the file
    ``.safetensors`` of ``open_file``, in one sequential pass, ``block_rows`` rows at a time.

    No shard exists whole in memory, as tensors or as bytes. ``rows`` is an array or anything with
    ``len`` and row slicing (``SpilledRows``). ``tensors_of(block, names)`` gives the tensors
    ``names`` of a block and must work row by row (every tensor row depends on its own input row
    only), which holds for ``sample_tensors``.
    """
    first = tensors_of(rows[:1], None)
    specs = [(name, first[name].dtype, (len(rows), *first[name].shape[1:])) for name in sorted(first)]
    head = _safetensors_header(specs, metadata)
    size = len(head) + sum(int(np.prod(shape)) * dtype.itemsize for _, dtype, shape in specs)
    with open_file(".safetensors", size) as fh:
        fh.write(head)
        for name, _, _ in specs:  # tensor after tensor, as they lie in the file
            for lo in range(0, len(rows), block_rows):
                arr = np.ascontiguousarray(tensors_of(rows[lo : lo + block_rows], (name,))[name])
                fh.write(arr.astype(arr.dtype.newbyteorder("<"), copy=False).data)


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

    Written by ``write_safetensors_streaming``, a block of rows at a time.
    """

    suffixes = (".safetensors",)

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        return {".safetensors": safetensors_bytes(self.stored(tensors), metadata)}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        write_safetensors_streaming(open_file, rows, lambda block, names=None: self.stored(tensors_of(block, names)),
                                    metadata)


@SHARD_FORMATS.register("npy")
class NpyFormat(ShardFormat):
    """``input_ids`` only, as one (samples, sequence_length) int32 ``.npy``; the loader derives the rest."""

    suffixes = (".npy",)
    bytes_per_slot = 4

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        buf = io.BytesIO()
        np.save(buf, self.stored(tensors)["input_ids"], allow_pickle=False)
        return {".npy": buf.getvalue()}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        """The bytes ``np.save`` writes: its version 1.0 header for the whole shape, then the rows."""
        length = rows[:1].shape[1]
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": self.token_dtype.str, "fortran_order": False,
                                                    "shape": (len(rows), length)})
        with open_file(".npy", head.tell() + len(rows) * length * self.token_dtype.itemsize) as fh:
            fh.write(head.getvalue())
            for lo in range(0, len(rows), BLOCK_ROWS):
                fh.write(np.ascontiguousarray(rows[lo : lo + BLOCK_ROWS], dtype=self.token_dtype).data)


@SHARD_FORMATS.register("parquet")
class ParquetFormat(ShardFormat):
    """One row per sample, one list<int> column per tensor (HF ``datasets`` reads it); zstd inside."""

    suffixes = (".parquet",)
    compressible = False
    ROW_GROUP = 1024

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(self._table(tensors, metadata), buf, compression="zstd", row_group_size=self.ROW_GROUP)
        return {".parquet": buf.getvalue()}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        """One row group (``ROW_GROUP`` rows) at a time: the row groups ``encode`` makes."""
        import pyarrow.parquet as pq

        with open_file(".parquet", None) as fh:
            writer = None
            for lo in range(0, max(len(rows), 1), self.ROW_GROUP):  # an empty shard: one empty table
                table = self._table(tensors_of(rows[lo : lo + self.ROW_GROUP], None), metadata)
                if writer is None:
                    writer = pq.ParquetWriter(_Raw(fh.write), table.schema, compression="zstd")
                writer.write_table(table, row_group_size=self.ROW_GROUP)
            writer.close()

    @staticmethod
    def _table(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> Any:
        import pyarrow as pa

        cols = {}
        for name, arr in tensors.items():
            n, length = arr.shape
            offsets = pa.array(np.arange(0, (n + 1) * length, length, dtype=np.int32))
            cols[name] = pa.ListArray.from_arrays(offsets, pa.array(arr.reshape(-1)))
        return pa.table(cols).replace_schema_metadata({f"corpusforge.{k}": v for k, v in metadata.items()})


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
        tokens = ids[keep].astype(self.token_dtype)  # row-major, so rows stay in order
        return {".bin": tokens.tobytes(), ".idx": self._index(keep.sum(axis=1).astype(np.int32))}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        """The tokens block by block, keeping each row's length (4 bytes a sample) for the ``.idx``."""
        lengths = [np.zeros(0, np.int32)]
        with open_file(".bin", None) as fh:
            for lo in range(0, len(rows), BLOCK_ROWS):
                keep = (block := rows[lo : lo + BLOCK_ROWS]) != PAD
                lengths.append(np.count_nonzero(keep, axis=1).astype(np.int32))
                fh.write(np.ascontiguousarray(block[keep], dtype=self.token_dtype).data)
        idx = self._index(np.concatenate(lengths))
        with open_file(".idx", len(idx)) as fh:
            fh.write(idx)

    def _index(self, lengths: np.ndarray) -> bytes:
        """The ``.idx`` of sequences of ``lengths`` tokens (int32 or uint16), one document each."""
        size = self.token_dtype.itemsize
        pointers = (np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]]) * size).astype(np.int64)
        doc_idx = np.arange(len(lengths) + 1, dtype=np.int64)
        return b"".join([
            MEGATRON_HEADER,
            struct.pack("<Q", 1),
            struct.pack("<B", MEGATRON_DTYPE_CODES[self.token_dtype.newbyteorder("=")]),
            struct.pack("<Q", len(lengths)),
            struct.pack("<Q", len(doc_idx)),
            lengths.tobytes(), pointers.tobytes(), doc_idx.tobytes(),
        ])  # fmt: skip


def get_format(name: str) -> Any:
    return SHARD_FORMATS.get(name, where="sharding.format")()
