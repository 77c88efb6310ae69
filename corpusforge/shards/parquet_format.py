"""Parquet shards: one row per sample, one ``list<int>`` column per tensor (HF ``datasets`` reads them)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.registry import SHARD_FORMATS
from corpusforge.shards.contract import OpenFile, RawWriter, Rows, ShardFormat, TensorsOf


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


@SHARD_FORMATS.register("parquet")
class ParquetFormat(ShardFormat):
    """One row per sample, one list<int> column per tensor (HF ``datasets`` reads it); zstd inside."""

    suffixes = (".parquet",)
    compressible = False
    no_compression_reason = "parquet compresses internally"
    ROW_GROUP = 1024

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(self._table(self.stored(tensors), metadata), buf, compression="zstd", row_group_size=self.ROW_GROUP)
        return {".parquet": buf.getvalue()}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        """One row group (``ROW_GROUP`` rows) at a time: the row groups ``encode`` makes."""
        import pyarrow.parquet as pq

        with open_file(".parquet", None) as fh:
            writer = None
            for lo in range(0, max(len(rows), 1), self.ROW_GROUP):  # an empty shard: one empty table
                table = self._table(self.stored(tensors_of(rows[lo : lo + self.ROW_GROUP], None)), metadata)
                if writer is None:
                    writer = pq.ParquetWriter(RawWriter(fh.write), table.schema, compression="zstd")
                writer.write_table(table, row_group_size=self.ROW_GROUP)
            writer.close()

    @classmethod
    def read(cls, path: Path, sequence_length: int, pad: int) -> dict[str, np.ndarray]:
        return read_parquet(path)

    @staticmethod
    def _table(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> Any:
        import pyarrow as pa

        cols = {}
        for name, arr in tensors.items():
            n, length = arr.shape
            offsets = pa.array(np.arange(0, (n + 1) * length, length, dtype=np.int32))
            cols[name] = pa.ListArray.from_arrays(offsets, pa.array(arr.reshape(-1)))
        return pa.table(cols).replace_schema_metadata({f"corpusforge.{k}": v for k, v in metadata.items()})
