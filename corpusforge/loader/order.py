"""The sample order of an epoch: a pure function of (seed, epoch, shard sizes).

Shards are permuted, then inside each shard the blocks of ``block_size`` consecutive rows are
permuted and the rows inside each block too. Position ``p`` of an epoch therefore names one
sample without any saved buffer, which is what makes resume exact for any worker or rank count
(the approach of mosaicml/streaming). Only the shard being read needs its row order in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_MASK = (1 << 63) - 1


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([k & _MASK for k in key])))


class EpochOrder:
    """Maps positions ``[0, total)`` of one epoch to ``(shard, row)`` pairs."""

    def __init__(self, sizes: list[int], seed: int, epoch: int, shuffle: bool = True, block_size: int = 256):
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.seed, self.epoch, self.shuffle, self.block_size = seed, epoch, shuffle, block_size
        n = len(self.sizes)
        self.shard_order = _rng(seed, epoch, 0).permutation(n) if shuffle and n else np.arange(n)
        self.ends = np.cumsum(self.sizes[self.shard_order])
        self.starts = self.ends - self.sizes[self.shard_order]
        self.total = int(self.ends[-1]) if n else 0
        self._cached: tuple[int, np.ndarray] | None = None

    def rows_of(self, shard: int) -> np.ndarray:
        """The order in which this epoch reads the rows of ``shard`` (blocks permuted, then rows)."""
        if self._cached is not None and self._cached[0] == shard:
            return self._cached[1]
        n = int(self.sizes[shard])
        if not self.shuffle:
            rows = np.arange(n, dtype=np.int64)
        else:
            rng = _rng(self.seed, self.epoch, shard + 1)
            n_blocks = -(-n // self.block_size)
            block_rank = np.empty(n_blocks, dtype=np.float64)
            block_rank[rng.permutation(n_blocks)] = np.arange(n_blocks)
            # Sorting by (rank of the row's block) + a jitter in [0, 1) permutes rows inside blocks.
            key = block_rank[np.arange(n) // self.block_size] + rng.random(n)
            rows = np.argsort(key, kind="stable").astype(np.int64)
        self._cached = (shard, rows)
        return rows

    def segments(self, start: int, stop: int) -> list[tuple[int, np.ndarray]]:
        """Positions ``[start, stop)`` as ``(shard, rows)`` runs, in reading order."""
        return list(self.iter_segments(start, stop))

    def iter_segments(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``segments``, one shard at a time, so a whole epoch never sits in memory."""
        stop = min(stop, self.total)
        pos = start
        while pos < stop:
            k = int(np.searchsorted(self.ends, pos, side="right"))
            shard = int(self.shard_order[k])
            lo = pos - int(self.starts[k])
            hi = min(stop, int(self.ends[k])) - int(self.starts[k])
            yield shard, self.rows_of(shard)[lo:hi]
            pos += hi - lo
