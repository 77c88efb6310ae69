"""Open one shard as NumPy arrays: memory-mapped when plain, decompressed once when compressed.

A SafeTensors file is an 8-byte little-endian header length, a JSON header giving each tensor's
dtype, shape and byte range, then the data; so a plain shard maps with no copy and rows are read
only when indexed. ``.zst``, ``.gz`` and ``.lz4`` shards are decompressed into memory, as are
the formats that store only ``input_ids`` (their other tensors are derived on opening).
"""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.shards.formats import MEGATRON_DTYPE_CODES, MEGATRON_HEADER
from corpusforge.shards.packer import sample_tensors
from corpusforge.tokenize.special import PAD

_DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
    "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
    "F16": np.float16, "F32": np.float32, "F64": np.float64,
}  # fmt: skip
COMPRESSIONS = (".zst", ".gz", ".lz4")


def _decompress(path: Path) -> bytes:
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
        return np.frombuffer(_decompress(path), dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a (possibly compressed) SafeTensors file, as views into one buffer."""
    path = Path(path)
    buf = _buffer(path)
    n = int(np.frombuffer(buf[:8].tobytes(), dtype="<u8")[0])
    try:
        header = json.loads(buf[8 : 8 + n].tobytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a SafeTensors file (bad header: {exc})") from None
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        lo, hi = info["data_offsets"]
        out[name] = buf[base + lo : base + hi].view(_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def read_parquet(path: Path) -> dict[str, np.ndarray]:
    """A parquet shard's list columns as (samples, length) arrays (read into memory)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        out[name] = col.values.to_numpy(zero_copy_only=False).reshape(len(col), -1)
    return out


def read_megatron_rows(bin_path: Path, sequence_length: int) -> np.ndarray:
    """Rows of a Megatron ``.bin``/``.idx`` pair, right-padded with PAD to ``sequence_length``."""
    idx = bin_path.with_suffix(".idx").read_bytes()
    if idx[:9] != MEGATRON_HEADER:
        raise ValueError(f"{bin_path.with_suffix('.idx')}: not a Megatron index (header {idx[:9]!r})")
    _version, code, n, _docs = struct.unpack_from("<QBQQ", idx, 9)
    dtype = {v: k for k, v in MEGATRON_DTYPE_CODES.items()}[code]
    lengths = np.frombuffer(idx, dtype=np.int32, count=n, offset=34)
    tokens = np.memmap(bin_path, dtype=dtype, mode="r")
    rows = np.full((n, sequence_length), PAD, dtype=np.int32)
    rows[np.arange(sequence_length) < lengths[:, None]] = tokens
    return rows


def open_shard(path: str | Path, sequence_length: int = 0, derive: tuple[str, ...] = (),
               media_layout: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Tensors of one shard, by the file's name: SafeTensors (optionally .zst/.gz/.lz4), .npy,
    .parquet or Megatron .bin/.idx. Formats that store only ``input_ids`` get the other tensors
    derived exactly as the writer makes them (``derive`` names the optional ones; a multimodal
    index's ``media_layout`` gives the modality mask)."""
    path = Path(path)
    name = path.name
    for ext in COMPRESSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith(".safetensors"):
        return read_safetensors(path)
    if name.endswith(".parquet"):
        return read_parquet(path)
    if name.endswith(".npy"):
        raw = _buffer(path)
        ids = np.load(io.BytesIO(raw.tobytes())) if path.suffix in COMPRESSIONS else np.load(path, mmap_mode="r")
    elif name.endswith(".bin"):
        ids = read_megatron_rows(path, sequence_length)
    else:
        raise ValueError(f"{path}: unknown shard format; the loader reads .safetensors, .npy, .parquet, .bin")
    return sample_tensors(ids, "position_ids" in derive, "document_ids" in derive, media_layout)
