"""Open one shard as NumPy arrays, whatever its format: the reader beside the writers.

One reader for every registered format, shared by the loader, ``validate``, ``inspect``, ``erase``
and the write-time shuffle. ``read_stored`` gives the tensors exactly as the files hold them (the
format's ``read``); ``open_shard`` adds the ones an id-only format (``stores_masks`` False: ``.npy``,
Megatron) leaves out, derived as the writer derives them. The format and compression follow from
the main file's name (``shard_kind``). Plain files are memory-mapped where the format allows;
``.zst``, ``.gz`` and ``.lz4`` shards are decompressed into memory. A file that breaks its format
raises ``ValueError`` naming the file and the fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.shards.contract import COMPRESSIONS, file_bytes, read_decompressed
from corpusforge.shards.formats import format_class, shard_kind
from corpusforge.shards.megatron_format import MegatronIndex, read_megatron_index, read_megatron_rows
from corpusforge.shards.packer import sample_tensors
from corpusforge.shards.parquet_format import read_parquet
from corpusforge.shards.safetensors_format import read_safetensors
from corpusforge.tokenize.special import PAD, RTDLM, SpecialIds

__all__ = [
    "COMPRESSIONS", "MegatronIndex", "file_bytes", "open_shard", "read_decompressed", "read_megatron_index",
    "read_megatron_rows", "read_parquet", "read_safetensors", "read_stored", "shard_kind",
]  # fmt: skip


def read_stored(path: str | Path, sequence_length: int = 0, pad: int = PAD) -> dict[str, np.ndarray]:
    """The tensors the shard's files hold, as stored: every tensor of SafeTensors and Parquet,
    ``input_ids`` alone of ``.npy`` (dtype as written) and Megatron (rows rebuilt from the
    ``.bin``/``.idx`` pair, right-padded with ``pad`` to ``sequence_length``)."""
    path = Path(path)
    return format_class(shard_kind(path)[0]).read(path, sequence_length, pad)


def open_shard(path: str | Path, sequence_length: int = 0, derive: tuple[str, ...] = (),
               media_layout: dict[str, Any] | None = None, special: SpecialIds = RTDLM) -> dict[str, np.ndarray]:
    """Tensors of one shard, by the file's name: SafeTensors (optionally .zst/.gz/.lz4), .npy,
    .parquet, Megatron .bin/.idx or any other registered format. Formats that store only
    ``input_ids`` get the other tensors derived exactly as the writer makes them (``derive`` names
    the optional ones; a multimodal index's ``media_layout`` gives the modality mask; ``special``
    the index's special ids)."""
    stored = read_stored(path, sequence_length, special.pad)
    if format_class(shard_kind(path)[0]).stores_masks:
        return stored
    return sample_tensors(stored["input_ids"], "position_ids" in derive, "document_ids" in derive, media_layout,
                          special=special)
