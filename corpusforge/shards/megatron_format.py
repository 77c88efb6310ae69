"""Megatron-LM ``MMapIndexedDataset`` shards (version 1): ``.bin`` tokens and an ``.idx`` index.

``.idx``: the 9 bytes ``MMIDIDX\\x00\\x00``, a little-endian u64 version (1), a u8 dtype code, a u64
sequence count ``n``, a u64 document-index length ``d``, then ``n`` int32 sizes, ``n`` int64 byte
pointers into the ``.bin`` and ``d`` int64 ``doc_idx`` entries. ``.bin``: the tokens back to back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.registry import SHARD_FORMATS
from corpusforge.shards.contract import BLOCK_ROWS, OpenFile, Rows, ShardFormat, TensorsOf
from corpusforge.tokenize.special import PAD

MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
                        np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.float32): 7,
                        np.dtype(np.uint16): 8}  # fmt: skip
_MEGATRON_CODES = {v: k for k, v in MEGATRON_DTYPE_CODES.items()}


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


@SHARD_FORMATS.register("megatron")
class MegatronFormat(ShardFormat):
    """Megatron-LM ``MMapIndexedDataset``: ``.bin`` tokens and ``.idx`` index (version 1).

    Each sample row, without its padding, is one sequence and one document (``doc_idx`` is
    0..samples): rows are already packed, and Megatron's GPT dataset re-samples sequences anyway.
    """

    suffixes = (".bin", ".idx")
    compressible = False
    no_compression_reason = "Megatron reads .bin files memory-mapped"
    stores_masks = False
    bytes_per_slot = 4

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        ids = tensors["input_ids"]
        keep = ids != int(metadata.get("pad_id", PAD))
        tokens = ids[keep].astype(self.token_dtype)  # row-major, so rows stay in order
        return {".bin": tokens.tobytes(), ".idx": self._index(keep.sum(axis=1).astype(np.int32))}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        """The tokens block by block, keeping each row's length (4 bytes a sample) for the ``.idx``."""
        lengths = [np.zeros(0, np.int32)]
        pad = int(metadata.get("pad_id", PAD))  # the run's padding id (shard metadata)
        with open_file(".bin", None) as fh:
            for lo in range(0, len(rows), BLOCK_ROWS):
                keep = (block := rows[lo : lo + BLOCK_ROWS]) != pad
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

    @classmethod
    def read(cls, path: Path, sequence_length: int, pad: int) -> dict[str, np.ndarray]:
        """``input_ids`` rebuilt from the ``.bin``/``.idx`` pair as int32 rows, right-padded with ``pad``."""
        return {"input_ids": read_megatron_rows(path, sequence_length, pad)}

    @classmethod
    def stored_dtypes(cls, dtypes: dict[str, str]) -> dict[str, str]:
        return {"input_ids": "int32"}  # rows are rebuilt as int32 from the .bin, whatever its token dtype

    @classmethod
    def check(cls, path: Path, entry: dict[str, Any], sequence_length: int, token_dtype: np.dtype) -> list[str]:
        """Faults of a Megatron pair: the ``.idx`` describes ``samples`` back-to-back sequences of at most
        ``sequence_length`` tokens of the index's dtype filling the ``.bin``, one document each (``doc_idx``
        0..samples)."""
        name = entry["path"]
        idx_name = name[: -len(".bin")] + ".idx"
        try:
            idx = read_megatron_index(path.with_suffix(".idx"))
        except ValueError as exc:
            return [f"{idx_name}: {str(exc).split(': ', 1)[-1]}"]
        faults = []
        if idx.version != 1:
            faults.append(f"{idx_name}: version {idx.version}, the writer writes version 1")
        if idx.dtype != token_dtype:
            faults.append(f"{idx_name}: token dtype {idx.dtype}, expected {token_dtype}")
        n = len(idx.sizes)
        if n != entry["samples"]:
            faults.append(f"{idx_name}: {n} sequences, index says {entry['samples']} samples")
        bad = np.flatnonzero((idx.sizes < 1) | (idx.sizes > sequence_length))
        if len(bad):
            faults.append(f"{idx_name}: {len(bad)} sequence sizes outside 1-{sequence_length} (first: sequence "
                          f"{bad[0]}, size {idx.sizes[bad[0]]})")
        want = (np.cumsum(idx.sizes, dtype=np.int64) - idx.sizes) * idx.dtype.itemsize
        bad = np.flatnonzero(idx.pointers != want)
        if len(bad):
            faults.append(f"{idx_name}: {len(bad)} pointers off (first: sequence {bad[0]} at byte "
                          f"{idx.pointers[bad[0]]}, expected {want[bad[0]]}: sequences lie back to back)")
        if not np.array_equal(idx.doc_idx, np.arange(n + 1)):
            faults.append(f"{idx_name}: doc_idx is not 0..{n} (one document per sequence)")
        need = int(idx.sizes.sum(dtype=np.int64)) * idx.dtype.itemsize
        if path.stat().st_size != need:
            faults.append(f"{name}: {path.stat().st_size} bytes, the .idx sizes need {need}")
        return faults
