"""Write packed samples as SafeTensors shards of bounded size, each atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

from corpusforge.shards.packer import sample_tensors
from corpusforge.state import atomic_write_bytes
from corpusforge.tokenize.special import PAD

# input_ids + attention_mask + labels (int32) + modality_mask (uint8), per token.
BYTES_PER_TOKEN = 4 + 4 + 4 + 1


class ShardWriter:
    """Collects rows of one split in one task and writes ``<prefix>_<k>.safetensors`` files.

    A shard is closed once it holds ``max_shard_bytes`` worth of samples (at least one sample).
    ``metadata`` goes into every SafeTensors header (string values only, as the format requires).
    """

    def __init__(
        self,
        prefix: Path,
        sequence_length: int,
        max_shard_bytes: int,
        metadata: dict[str, str],
        position_ids: bool = False,
        document_ids: bool = False,
    ):
        self.prefix, self.length = prefix, sequence_length
        self.position_ids, self.document_ids = position_ids, document_ids
        per_token = BYTES_PER_TOKEN + 4 * (position_ids + document_ids)
        self.rows_per_shard = max(1, max_shard_bytes // (per_token * sequence_length))
        self.metadata = metadata
        self._rows: list[np.ndarray] = []
        self._n = 0
        self.shards: list[dict[str, Any]] = []

    def add(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        self._rows.append(rows)
        self._n += len(rows)
        while self._n >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def close(self) -> list[dict[str, Any]]:
        if self._n:
            self._flush(self._n)
        return self.shards

    def _flush(self, n: int) -> None:
        flat = np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0]
        rows, rest = flat[:n], flat[n:]
        self._rows, self._n = ([rest] if len(rest) else []), len(rest)
        data = save(sample_tensors(rows, self.position_ids, self.document_ids), metadata=self.metadata)
        path = self.prefix.with_name(f"{self.prefix.name}_{len(self.shards):04d}.safetensors")
        atomic_write_bytes(path, data)
        self.shards.append(
            {
                "part": str(path),
                "samples": int(len(rows)),
                "tokens": int(np.count_nonzero(rows != PAD)),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
