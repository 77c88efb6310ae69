"""Write packed samples as shards of bounded size, each file atomically."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.layout import OutputLayout
from corpusforge.shards.formats import COMPRESSION_SUFFIX, SafeTensorsFormat, ShardFormat, write_shard
from corpusforge.shards.packer import sample_tensors
from corpusforge.tokenize.special import RTDLM, SpecialIds

# input_ids + attention_mask + labels (int32) + modality_mask (uint8), per token.
BYTES_PER_TOKEN = 4 + 4 + 4 + 1
# Stored dtype of input_ids: uint16 halves them where every id is below 65536.
TOKEN_DTYPES = {"int32": "<i4", "uint16": "<u2"}


class SpilledRows:
    """The int32 rows of one shard while it fills, appended to a file beside it and read back in
    slices: a shard costs its writer no memory however large it is, and only the page cache holds it.
    """

    def __init__(self, path: Path, length: int, pad: int = RTDLM.pad):
        self.path, self.length, self.pad = path, length, pad
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "w+b", buffering=0)
        self._n = 0
        self.tokens = 0  # non-padding ids, counted as they arrive
        self.max_id = 0

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.int32)
        view = memoryview(rows).cast("B")
        while view.nbytes:
            view = view[self._fh.write(view) :]
        self._n += len(rows)
        self.tokens += int(np.count_nonzero(rows != self.pad))
        self.max_id = max(self.max_id, int(rows.max())) if rows.size else self.max_id

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, rows: slice) -> np.ndarray:
        lo, hi, step = rows.indices(self._n)
        if step != 1:
            raise ValueError("SpilledRows reads contiguous rows only")
        out = np.empty((max(0, hi - lo), self.length), dtype=np.int32)
        view, at = memoryview(out).cast("B"), lo * self.length * 4
        while view.nbytes:
            got = os.preadv(self._fh.fileno(), [view], at)
            if not got:
                raise OSError(f"{self.path}: spilled rows end early")
            view, at = view[got:], at + got
        return out

    def remove(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


class ShardWriter:
    """Collects rows of one split in one task and writes ``<prefix>_<k>.<suffix>`` files.

    A shard is closed once it holds ``max_shard_bytes`` worth of samples (at least one sample) or
    ``max_tokens_per_shard`` token slots (padding included). ``metadata`` goes into every file
    that has a header for it (string values only, as SafeTensors requires).
    """

    def __init__(
        self,
        prefix: Path,
        sequence_length: int,
        max_shard_bytes: int,
        metadata: dict[str, str],
        position_ids: bool = False,
        document_ids: bool = False,
        shard_format: ShardFormat | None = None,
        compression: str = "none",
        max_tokens_per_shard: int | None = None,
        media_layout: dict[str, Any] | None = None,
        special: SpecialIds = RTDLM,
        token_dtype: str = "int32",
    ):
        self.special = special  # the run's pad id and masked labels
        self.prefix, self.length = prefix, sequence_length
        self.position_ids, self.document_ids = position_ids, document_ids
        self.media_layout = media_layout  # multimodal: modality_mask derived from ids by this layout
        self.format = shard_format or SafeTensorsFormat()
        self.compression = compression
        if token_dtype not in TOKEN_DTYPES:
            raise ValueError(f"token_dtype must be one of {', '.join(TOKEN_DTYPES)}, not {token_dtype!r}")
        self.format.token_dtype = np.dtype(TOKEN_DTYPES[token_dtype])
        narrow = 4 - self.format.token_dtype.itemsize  # bytes each token slot saves
        per_token = (self.format.bytes_per_slot - narrow if self.format.bytes_per_slot
                     else BYTES_PER_TOKEN - narrow + 4 * (position_ids + document_ids))
        self.rows_per_shard = max(1, max_shard_bytes // (per_token * sequence_length))
        if max_tokens_per_shard is not None:
            self.rows_per_shard = max(1, min(self.rows_per_shard, max_tokens_per_shard // sequence_length))
        self.metadata = metadata
        self._spill: SpilledRows | None = None
        self.shards: list[dict[str, Any]] = []

    def add(self, rows: np.ndarray) -> None:
        """Append (samples, sequence_length) rows; every full shard is written at once."""
        while len(rows):
            if self._spill is None:
                self._spill = SpilledRows(self._path(len(self.shards), ".rows"), self.length, self.special.pad)
            room = self.rows_per_shard - len(self._spill)
            self._spill.append(rows[:room])
            rows = rows[room:]
            if len(self._spill) == self.rows_per_shard:
                self._flush()

    def close(self) -> list[dict[str, Any]]:
        if self._spill is not None:
            self._flush()
        return self.shards

    def _path(self, k: int, suffix: str) -> Path:
        return OutputLayout.prefix_part(self.prefix, k, suffix)

    def _tensors(self, block: np.ndarray, names: Collection[str] | None = None) -> dict[str, np.ndarray]:
        return sample_tensors(block, self.position_ids, self.document_ids, self.media_layout, names, self.special)

    def _flush(self) -> None:
        rows, self._spill = self._spill, None
        assert rows is not None
        k, ext = len(self.shards), COMPRESSION_SUFFIX.get(self.compression, "")
        try:
            limit = np.iinfo(self.format.token_dtype).max
            if rows.max_id > limit:
                raise ValueError(f"{self._path(k, '')}: token id {rows.max_id} does not fit {self.format.token_dtype.name} "
                                 "token storage; write int32")
            paths = write_shard(self.format, rows, self._tensors, self.metadata, self.compression,
                                lambda suffix: self._path(k, suffix + ext))
            self._record(rows, paths)
        finally:
            rows.remove()

    def _record(self, rows: SpilledRows, paths: list[tuple[Path, int, str]]) -> None:
        (path, _, sha), sidecars = paths[0], paths[1:]
        record: dict[str, Any] = {
            "part": str(path),
            "samples": len(rows),
            "tokens": rows.tokens,
            "bytes": sum(size for _, size, _ in paths),
            "sha256": sha,
        }
        if sidecars:
            record["sidecars"] = [{"part": str(p), "sha256": h} for p, _, h in sidecars]
        self.shards.append(record)
