"""The shard-format contract: what a format registered in ``SHARD_FORMATS`` provides.

A format writes one shard's files from its rows (``write``), block by block through sinks that
compress and hash on the way (``write_shard``), and reads them back as the tensors they hold
(``read``); its capability flags say what the rest of corpusforge may ask of it. The first
suffix is the shard's main file (the one ``shard_index.json`` points to), the others are sidecars.
``compression`` (zstd, gzip, lz4) wraps every file of the formats that allow it; ``read`` undoes it.
A new format is one module under ``corpusforge/shards/`` (or a plugin) with a subclass decorated
``@SHARD_FORMATS.register(name)``: the recipe, writer, loader, validate and inspect then know it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

import numpy as np

from corpusforge.state import atomic_path


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
COMPRESSIONS = tuple(COMPRESSION_SUFFIX.values())
_COMPRESSION_NAMES = {ext: name for name, ext in COMPRESSION_SUFFIX.items()}


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


class RawWriter(io.RawIOBase):
    """A write-only file whose bytes go to ``put``, for a writer that wants a real file object
    (pyarrow's ParquetWriter, tarfile); closing it leaves the sink behind it open."""

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


def split_compression(path: str | Path) -> tuple[str, str]:
    """``("shard_00000.npy", "zstd")`` for ``shard_00000.npy.zst``: the name without its compression
    suffix, and the compression (``none`` for a plain file)."""
    name = Path(path).name
    for ext in COMPRESSIONS:
        if name.endswith(ext):
            return name[: -len(ext)], _COMPRESSION_NAMES[ext]
    return name, "none"


def read_decompressed(path: Path) -> bytes:
    """The decompressed content of a ``.zst``, ``.gz`` or ``.lz4`` file."""
    data = path.read_bytes()
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 40)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".lz4":
        try:
            import lz4.frame
        except ImportError:
            raise ImportError(f"{path}: reading .lz4 shards needs lz4: pip install 'corpusforge[formats]'") from None
        return lz4.frame.decompress(data)
    raise ValueError(f"{path}: unknown compression {path.suffix!r}; known: {', '.join(COMPRESSIONS)}")


def file_bytes(path: Path) -> np.ndarray:
    """A shard file's content as uint8: memory-mapped when plain, decompressed into memory when not."""
    if path.suffix in COMPRESSIONS:
        return np.frombuffer(read_decompressed(path), dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


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
    """One shard file format: its files (``suffixes``), how it writes and reads them, what it can do."""

    name: ClassVar[str] = "format"
    suffixes: ClassVar[tuple[str, ...]] = ()
    # Capability flags. compressible: whole-file compression (zstd, gzip, lz4) applies to its files.
    compressible: ClassVar[bool] = True
    # Why compression is refused (the recipe's error) when not compressible.
    no_compression_reason: ClassVar[str] = ""
    # stores_masks: the files hold every tensor (attention_mask, labels, modality_mask, ...); False
    # means input_ids only, and ``open_shard`` derives the rest exactly as the writer would.
    stores_masks: ClassVar[bool] = True
    # random_access: an uncompressed file's input_ids are memory-mapped by ``read``, so one sample
    # costs its own bytes, not the shard's (the write-time shuffle reads such parts in place).
    random_access: ClassVar[bool] = False
    # loader_readable: ``read`` is implemented, so the loader, validate, inspect and erase read it.
    loader_readable: ClassVar[bool] = True
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

    @classmethod
    def read(cls, path: Path, sequence_length: int, pad: int) -> dict[str, np.ndarray]:
        """The tensors the shard whose main file is ``path`` holds, as stored (compression undone);
        id-only formats right-pad rows they keep unpadded with ``pad`` to ``sequence_length``.
        A file that breaks the format raises ``ValueError`` naming the file and the fault."""
        raise NotImplementedError(f"{path}: shard format {cls.name!r} is write-only (loader_readable is False)")

    @classmethod
    def stored_dtypes(cls, dtypes: dict[str, str]) -> dict[str, str]:
        """The tensors and dtypes ``read`` gives for an index whose tensors are ``dtypes``."""
        return dict(dtypes) if cls.stores_masks else {"input_ids": dtypes["input_ids"]}

    @classmethod
    def check(cls, path: Path, entry: dict[str, Any], sequence_length: int, token_dtype: np.dtype) -> list[str]:
        """Faults of the shard's files that ``read`` does not see (``validate`` asks it first); none by default."""
        return []
