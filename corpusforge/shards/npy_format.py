"""``.npy`` shards: ``input_ids`` alone, one (samples, sequence_length) array; the loader derives the rest."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from corpusforge.registry import SHARD_FORMATS
from corpusforge.shards.contract import (
    BLOCK_ROWS,
    OpenFile,
    Rows,
    ShardFormat,
    TensorsOf,
    read_decompressed,
    split_compression,
)


@SHARD_FORMATS.register("npy")
class NpyFormat(ShardFormat):
    """``input_ids`` only, as one (samples, sequence_length) int32 ``.npy``; the loader derives the rest."""

    suffixes = (".npy",)
    bytes_per_slot = 4
    stores_masks = False
    random_access = True

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

    @classmethod
    def read(cls, path: Path, sequence_length: int, pad: int) -> dict[str, np.ndarray]:
        """``input_ids`` as written (its dtype kept): memory-mapped, or decompressed into memory."""
        if split_compression(path)[1] == "none":
            return {"input_ids": np.load(path, mmap_mode="r", allow_pickle=False)}
        return {"input_ids": np.load(io.BytesIO(read_decompressed(path)), allow_pickle=False)}
