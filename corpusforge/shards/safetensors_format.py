"""SafeTensors shards (the default): every tensor in one file, the run's metadata in its header.

A SafeTensors file is an 8-byte little-endian header length, a JSON header giving each tensor's
dtype, shape and byte range, then the data; so a plain shard maps with no copy and rows are read
only when indexed.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.registry import SHARD_FORMATS
from corpusforge.shards.contract import BLOCK_ROWS, OpenFile, Rows, ShardFormat, TensorsOf, file_bytes

_ST_DTYPES = {np.dtype(np.int32): "I32", np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64",
              np.dtype(np.uint16): "U16", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}  # fmt: skip
_DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
    "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
    "F16": np.float16, "F32": np.float32, "F64": np.float64,
}  # fmt: skip


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


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a (possibly compressed) SafeTensors file, as views into one buffer.

    The header is held to the format's rules (as the reference reader does): each tensor's byte
    range fits its dtype and shape, and the ranges tile the data section without gaps or overlaps.
    """
    path = Path(path)
    buf = file_bytes(path)
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


@SHARD_FORMATS.register("safetensors")
class SafeTensorsFormat(ShardFormat):
    """Every tensor in one SafeTensors file, the run's metadata in its header (default).

    Written by ``write_safetensors_streaming``, a block of rows at a time.
    """

    suffixes = (".safetensors",)
    random_access = True

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        return {".safetensors": safetensors_bytes(self.stored(tensors), metadata)}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        write_safetensors_streaming(open_file, rows, lambda block, names=None: self.stored(tensors_of(block, names)),
                                    metadata)

    @classmethod
    def read(cls, path: Path, sequence_length: int, pad: int) -> dict[str, np.ndarray]:
        return read_safetensors(path)
