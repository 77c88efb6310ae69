"""Write packed samples as shards of bounded size, each file atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.shards.formats import (
    COMPRESSION_SUFFIX,
    SafeTensorsFormat,
    ShardFormat,
    compress,
    write_safetensors_streaming,
)
from corpusforge.shards.packer import sample_tensors
from corpusforge.state import atomic_path, atomic_write_bytes
from corpusforge.tokenize.special import PAD

# input_ids + attention_mask + labels (int32) + modality_mask (uint8), per token.
BYTES_PER_TOKEN = 4 + 4 + 4 + 1


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
    ):
        self.prefix, self.length = prefix, sequence_length
        self.position_ids, self.document_ids = position_ids, document_ids
        self.media_layout = media_layout  # multimodal: modality_mask derived from ids by this layout
        self.format = shard_format or SafeTensorsFormat()
        self.compression = compression
        per_token = self.format.bytes_per_slot or BYTES_PER_TOKEN + 4 * (position_ids + document_ids)
        self.rows_per_shard = max(1, max_shard_bytes // (per_token * sequence_length))
        if max_tokens_per_shard is not None:
            self.rows_per_shard = max(1, min(self.rows_per_shard, max_tokens_per_shard // sequence_length))
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
        if self.format.streams and self.compression == "none":
            self._write_streaming(rows)
            return
        files = self.format.encode(sample_tensors(rows, self.position_ids, self.document_ids, self.media_layout),
                                   self.metadata)
        ext = COMPRESSION_SUFFIX.get(self.compression, "")
        paths = []
        for suffix, data in files.items():
            if ext:
                data = compress(data, self.compression)
            path = self.prefix.with_name(f"{self.prefix.name}_{len(self.shards):04d}{suffix}{ext}")
            atomic_write_bytes(path, data)
            paths.append((path, len(data), hashlib.sha256(data).hexdigest()))
        self._record(rows, paths)

    def _write_streaming(self, rows: np.ndarray) -> None:
        """A SafeTensors shard written in row blocks: memory holds ``input_ids``, not every tensor
        plus the file's bytes (a 100 MB shard peaked ~3x its size in memory before)."""
        path = self.prefix.with_name(f"{self.prefix.name}_{len(self.shards):04d}.safetensors")
        with atomic_path(path) as tmp:
            with open(tmp, "w+b") as fh:
                write_safetensors_streaming(
                    fh, rows, lambda block: sample_tensors(block, self.position_ids, self.document_ids,
                                                           self.media_layout), self.metadata)
                fh.seek(0)
                digest = hashlib.sha256()
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
                size = fh.tell()
        self._record(rows, [(path, size, digest.hexdigest())])

    def _record(self, rows: np.ndarray, paths: list[tuple[Path, int, str]]) -> None:
        (path, _, sha), sidecars = paths[0], paths[1:]
        record: dict[str, Any] = {
            "part": str(path),
            "samples": int(len(rows)),
            "tokens": int(np.count_nonzero(rows != PAD)),
            "bytes": sum(size for _, size, _ in paths),
            "sha256": sha,
        }
        if sidecars:
            record["sidecars"] = [{"part": str(p), "sha256": h} for p, _, h in sidecars]
        self.shards.append(record)
