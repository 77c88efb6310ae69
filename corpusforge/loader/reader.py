"""Open one shard as NumPy arrays: memory-mapped when plain, decompressed once when compressed.

One reader for every format the writer makes (``corpusforge.shards.formats``), shared by the
loader, ``validate``, ``inspect``, ``erase`` and the write-time shuffle. ``read_stored`` gives the
tensors exactly as the files hold them; ``open_shard`` adds the ones an id-only format (``.npy``,
Megatron) leaves out, derived as the writer derives them. A SafeTensors file is an 8-byte
little-endian header length, a JSON header giving each tensor's dtype, shape and byte range, then
the data; so a plain shard maps with no copy and rows are read only when indexed. ``.zst``, ``.gz``
and ``.lz4`` shards are decompressed into memory. A file that breaks its format raises
``ValueError`` naming the file and the fault.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.shards.formats import MEGATRON_DTYPE_CODES, MEGATRON_HEADER
from corpusforge.shards.packer import sample_tensors
from corpusforge.tokenize.special import PAD, RTDLM, SpecialIds

_DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
    "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
    "F16": np.float16, "F32": np.float32, "F64": np.float64,
}  # fmt: skip
COMPRESSIONS = (".zst", ".gz", ".lz4")
_COMPRESSION_NAMES = {".zst": "zstd", ".gz": "gzip", ".lz4": "lz4"}
# main file suffix -> sharding.format
FORMAT_SUFFIXES = {".safetensors": "safetensors", ".npy": "npy", ".parquet": "parquet", ".bin": "megatron"}
# formats whose files hold input_ids only; open_shard derives their other tensors
IDS_ONLY = ("npy", "megatron")
_MEGATRON_CODES = {v: k for k, v in MEGATRON_DTYPE_CODES.items()}


def shard_kind(path: str | Path) -> tuple[str, str]:
    """``(format, compression)`` of a shard by its main file's name: ``("npy", "zstd")`` for
    ``shard_00000.npy.zst``, ``("megatron", "none")`` for ``shard_00000.bin``."""
    name, compression = Path(path).name, "none"
    for ext in COMPRESSIONS:
        if name.endswith(ext):
            name, compression = name[: -len(ext)], _COMPRESSION_NAMES[ext]
    for suffix, fmt in FORMAT_SUFFIXES.items():
        if name.endswith(suffix):
            return fmt, compression
    raise ValueError(f"{path}: unknown shard format; the loader reads {', '.join(FORMAT_SUFFIXES)}")


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


def _buffer(path: Path) -> np.ndarray:
    if path.suffix in COMPRESSIONS:
        return np.frombuffer(read_decompressed(path), dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a (possibly compressed) SafeTensors file, as views into one buffer.

    The header is held to the format's rules (as the reference reader does): each tensor's byte
    range fits its dtype and shape, and the ranges tile the data section without gaps or overlaps.
    """
    path = Path(path)
    buf = _buffer(path)
    if len(buf) < 8:
        raise ValueError(f"{path}: not a SafeTensors file ({len(buf)} bytes, shorter than its length prefix)")
    n = int(np.frombuffer(buf[:8].tobytes(), dtype="<u8")[0])
    if 8 + n > len(buf):
        raise ValueError(f"{path}: not a SafeTensors file (header of {n} bytes in a {len(buf)}-byte file)")
    try:
        header = json.loads(buf[8 : 8 + n].tobytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a SafeTensors file (bad header: {exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a SafeTensors file (header is not a JSON object)")
    base = 8 + n
    specs = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info.get("dtype") not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info.get('dtype')}")
        dtype = np.dtype(_DTYPES[info["dtype"]])
        lo, hi = info["data_offsets"]
        if hi - lo != int(np.prod(info["shape"])) * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} spans bytes {lo}-{hi}, which does not fit "
                             f"{info['dtype']} {info['shape']}")
        specs.append((lo, hi, name, dtype, info["shape"]))
    at = 0
    for lo, hi, name, _, _ in sorted(specs):
        if lo != at:
            raise ValueError(f"{path}: tensor {name!r} starts at data byte {lo}, expected {at} (no gaps or overlaps)")
        at = hi
    if base + at != len(buf):
        raise ValueError(f"{path}: the tensors end at byte {base + at} of a {len(buf)}-byte file")
    return {name: buf[base + lo : base + hi].view(dtype).reshape(shape) for lo, hi, name, dtype, shape in specs}


def read_parquet(path: Path) -> dict[str, np.ndarray]:
    """A parquet shard's list columns as (samples, length) arrays (read into memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if not pa.types.is_list(col.type) or col.null_count or col.values.null_count:
            raise ValueError(f"{path}: column {name!r} is {col.type}, expected a list of numbers without nulls")
        widths = np.diff(col.offsets.to_numpy())
        if len(widths) and np.any(widths != widths[0]):
            row = int(np.argmax(widths != widths[0]))
            raise ValueError(f"{path}: column {name!r} row {row} holds {widths[row]} values, row 0 {widths[0]}")
        width = int(widths[0]) if len(widths) else 0
        out[name] = col.values.to_numpy(zero_copy_only=False).reshape(len(col), width)
    return out


@dataclass(frozen=True)
class MegatronIndex:
    """The arrays of a Megatron ``.idx`` (``MMapIndexedDataset`` version 1)."""

    version: int
    dtype: np.dtype
    sizes: np.ndarray  # int32 tokens per sequence
    pointers: np.ndarray  # int64 byte offset of each sequence in the .bin
    doc_idx: np.ndarray  # int64 first sequence of each document, then the sequence count


def read_megatron_index(path: str | Path) -> MegatronIndex:
    """Parse a ``.idx`` file; its header, dtype code and length must follow the format."""
    path = Path(path)
    idx = path.read_bytes()
    if idx[:9] != MEGATRON_HEADER:
        raise ValueError(f"{path}: not a Megatron index (header {idx[:9]!r})")
    if len(idx) < 34:
        raise ValueError(f"{path}: Megatron index cut short ({len(idx)} bytes, the header alone is 34)")
    version, code, n, docs = struct.unpack_from("<QBQQ", idx, 9)
    if code not in _MEGATRON_CODES:
        raise ValueError(f"{path}: unknown Megatron dtype code {code}")
    if len(idx) != 34 + 12 * n + 8 * docs:
        raise ValueError(f"{path}: {len(idx)} bytes, but {n} sequences and {docs} document entries need "
                         f"{34 + 12 * n + 8 * docs}")
    return MegatronIndex(
        version=version, dtype=np.dtype(_MEGATRON_CODES[code]),
        sizes=np.frombuffer(idx, dtype=np.int32, count=n, offset=34),
        pointers=np.frombuffer(idx, dtype=np.int64, count=n, offset=34 + 4 * n),
        doc_idx=np.frombuffer(idx, dtype=np.int64, count=docs, offset=34 + 12 * n),
    )  # fmt: skip


def read_megatron_rows(bin_path: Path, sequence_length: int, pad: int = PAD) -> np.ndarray:
    """Rows of a Megatron ``.bin``/``.idx`` pair, right-padded with ``pad`` (the run's padding id)
    to ``sequence_length``."""
    bin_path = Path(bin_path)
    index = read_megatron_index(bin_path.with_suffix(".idx"))
    if len(index.sizes) and (index.sizes.min() < 0 or index.sizes.max() > sequence_length):
        raise ValueError(f"{bin_path.with_suffix('.idx')}: sequence sizes {index.sizes.min()}-{index.sizes.max()} "
                         f"fall outside 0-{sequence_length} (sequence_length)")
    tokens = np.memmap(bin_path, dtype=index.dtype, mode="r") if bin_path.stat().st_size else np.empty(0, index.dtype)
    if len(tokens) != int(index.sizes.sum()):
        raise ValueError(f"{bin_path}: holds {len(tokens)} tokens, its .idx sizes add up to {int(index.sizes.sum())}")
    rows = np.full((len(index.sizes), sequence_length), pad, dtype=np.int32)
    rows[np.arange(sequence_length) < index.sizes[:, None]] = tokens
    return rows


def read_stored(path: str | Path, sequence_length: int = 0, pad: int = PAD) -> dict[str, np.ndarray]:
    """The tensors the shard's files hold, as stored: every tensor of SafeTensors and Parquet,
    ``input_ids`` alone of ``.npy`` (dtype as written) and Megatron (rows rebuilt from the
    ``.bin``/``.idx`` pair, right-padded with ``pad`` to ``sequence_length``)."""
    path = Path(path)
    fmt, compression = shard_kind(path)
    if fmt == "safetensors":
        return read_safetensors(path)
    if fmt == "parquet":
        return read_parquet(path)
    if fmt == "npy":
        source = io.BytesIO(read_decompressed(path)) if compression != "none" else path
        return {"input_ids": np.load(source, mmap_mode=None if compression != "none" else "r", allow_pickle=False)}
    return {"input_ids": read_megatron_rows(path, sequence_length, pad)}


def open_shard(path: str | Path, sequence_length: int = 0, derive: tuple[str, ...] = (),
               media_layout: dict[str, Any] | None = None, special: SpecialIds = RTDLM) -> dict[str, np.ndarray]:
    """Tensors of one shard, by the file's name: SafeTensors (optionally .zst/.gz/.lz4), .npy,
    .parquet or Megatron .bin/.idx. Formats that store only ``input_ids`` get the other tensors
    derived exactly as the writer makes them (``derive`` names the optional ones; a multimodal
    index's ``media_layout`` gives the modality mask; ``special`` the index's special ids)."""
    stored = read_stored(path, sequence_length, special.pad)
    if shard_kind(path)[0] not in IDS_ONLY:
        return stored
    return sample_tensors(stored["input_ids"], "position_ids" in derive, "document_ids" in derive, media_layout,
                          special=special)
