"""Global shuffle at write time: rewrite a split's shard parts in one seeded order of all rows.

Reading the shards in order then already gives well-mixed batches (a loader without a shuffle
buffer, or Megatron). Only ``input_ids`` are read back: every other tensor is a function of them,
so the writer rebuilds them exactly.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.layout import OutputLayout
from corpusforge.shards.formats import format_class, shard_kind
from corpusforge.shards.reader import read_stored
from corpusforge.shards.writer import ShardWriter


def shuffle_split(
    parts: list[dict[str, Any]], seed: int, sequence_length: int, writer: ShardWriter, chunk_bytes: int = 8 << 20
) -> list[dict[str, Any]]:
    """Write the rows of ``parts`` (in task order) through ``writer`` in a permutation fixed by ``seed``,
    gathering at most ``chunk_bytes`` of ``input_ids`` (at least one row) per step."""
    if not parts:
        return writer.close()
    chunk = max(1, chunk_bytes // (sequence_length * np.dtype(np.int32).itemsize))
    unpacked = OutputLayout.unpacked_beside(writer.prefix)  # one name, so a killed run's files go on the next
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir(parents=True)
    try:
        ids = [_mapped_ids(p["part"], sequence_length, unpacked / f"{k:06d}.rows", writer.special.pad)
               for k, p in enumerate(parts)]
        _gather(ids, seed, sequence_length, writer, chunk)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    return writer.close()


def _mapped_ids(part: str, sequence_length: int, spill: Path, pad: int) -> np.ndarray:
    """The ``input_ids`` of a shard part backed by a file, so the shuffle holds one part in memory at
    a time, not the split: the part itself where its format maps (``random_access``, uncompressed),
    else its rows written once, as int32, to ``spill`` (Megatron rows re-padded with the run's ``pad``)."""
    fmt, compression = shard_kind(Path(part))
    ids = read_stored(part, sequence_length, pad)["input_ids"]  # as stored: no derived tensors for npy/Megatron
    if compression == "none" and format_class(fmt).random_access:
        return ids
    np.ascontiguousarray(ids, dtype=np.int32).tofile(spill)
    shape = (len(ids), sequence_length)
    del ids
    return np.memmap(spill, dtype=np.int32, mode="r", shape=shape) if shape[0] else np.zeros(shape, np.int32)


def _gather(ids: list[np.ndarray], seed: int, sequence_length: int, writer: ShardWriter, chunk: int) -> None:
    """Hand ``writer`` the rows of ``ids`` (parts in task order) in ``shuffle_order``, ``chunk`` at a time."""
    first = np.cumsum([0] + [len(a) for a in ids])
    order = shuffle_order(seed, int(first[-1]))
    for lo in range(0, len(order), chunk):
        want = order[lo : lo + chunk]
        out = np.empty((len(want), sequence_length), dtype=np.int32)
        part_of = np.searchsorted(first, want, side="right") - 1
        for k in np.unique(part_of):
            sel = part_of == k
            rows = want[sel] - first[k]
            sort = np.argsort(rows)  # ascending reads from each part, then back into place
            out[np.flatnonzero(sel)[sort]] = ids[k][rows[sort]]
        writer.add(out)


def shuffle_order(seed: int, n: int) -> np.ndarray:
    """The shuffled split's row ``j`` is row ``order[j]`` of its parts in task order."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed & (2**63 - 1), 7]))).permutation(n)


def shuffle_shards(
    per_task: list[dict[str, list[dict[str, Any]]]],
    splits: list[str],
    seed: int,
    sequence_length: int,
    make_writer: Callable[[str], ShardWriter],
) -> list[dict[str, list[dict[str, Any]]]]:
    """The shuffled parts of every split, as one task's worth for ``finalize_shards``."""
    out = {}
    for split in splits:
        parts = [p for task in per_task for p in task.get(split, [])]
        out[split] = shuffle_split(parts, seed, sequence_length, make_writer(split))
    return [out]
