"""Open one shard as NumPy arrays: memory-mapped when plain, decompressed once when compressed.

A SafeTensors file is an 8-byte little-endian header length, a JSON header giving each tensor's
dtype, shape and byte range, then the data; so a plain shard maps with no copy and rows are read
only when indexed. ``.zst``, ``.gz`` and ``.lz4`` shards are decompressed into memory.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

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


def open_shard(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of one shard, by the file's name: ``*.safetensors[.zst|.gz|.lz4]``."""
    path = Path(path)
    name = path.name
    for ext in COMPRESSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith(".safetensors"):
        return read_safetensors(path)
    raise ValueError(f"{path}: the loader reads SafeTensors shards (optionally .zst/.gz/.lz4 compressed)")
