"""The sample order of an epoch: a pure function of (seed, epoch, shard sizes).

Two algorithms, both the approach of mosaicml/streaming (position ``p`` of an epoch names one
sample without any saved buffer, which is what makes resume exact for any worker or rank count):

- ``py1br`` (default): the shards are permuted and laid end to end, the sample space is cut
  into blocks of random size (0.75 to 1.25 × ``block_size``, drawn anew each epoch so block
  edges move), and each block is permuted as a whole. A block spans many shards, so a batch
  mixes rows of many files; memory is one block's permutation (8 bytes per row).
- ``shard_block``: shards permuted, then the blocks of ``block_size`` consecutive rows inside
  each shard, then the rows inside each block: a batch comes from one block of one shard.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_MASK = (1 << 63) - 1
ALGORITHMS = ("py1br", "shard_block")
DEFAULT_BLOCK = {"py1br": 1 << 16, "shard_block": 256}


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([k & _MASK for k in key])))


class EpochOrder:
    """Maps positions ``[0, total)`` of one epoch to ``(shard, row)`` pairs."""

    def __init__(self, sizes: list[int], seed: int, epoch: int, shuffle: bool = True, block_size: int | None = None,
                 algo: str = "py1br"):
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown shuffle algorithm {algo!r}; known: {', '.join(ALGORITHMS)}")
        block_size = DEFAULT_BLOCK[algo] if block_size is None else block_size
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.seed, self.epoch, self.shuffle, self.block_size, self.algo = seed, epoch, shuffle, block_size, algo
        n = len(self.sizes)
        self.shard_order = _rng(seed, epoch, 0).permutation(n) if shuffle and n else np.arange(n)
        self.ends = np.cumsum(self.sizes[self.shard_order])
        self.starts = self.ends - self.sizes[self.shard_order]
        self.total = int(self.ends[-1]) if n else 0
        self._cached: tuple[int, np.ndarray] | None = None
        self._block_cache: tuple[int, np.ndarray] | None = None
        if shuffle and algo == "py1br":
            lo, hi = max(1, block_size * 3 // 4), max(1, block_size * 5 // 4)
            count = self.total // lo + 1
            widths = _rng(seed, epoch, -1).integers(lo, hi + 1, size=count)
            self.block_ends = np.minimum(np.cumsum(widths), self.total)
            self.block_ends = self.block_ends[: int(np.searchsorted(self.block_ends, self.total)) + 1]

    def rows_of(self, shard: int) -> np.ndarray:
        """``shard_block``: the order in which this epoch reads the rows of ``shard``."""
        if self._cached is not None and self._cached[0] == shard:
            return self._cached[1]
        n = int(self.sizes[shard])
        if not self.shuffle or self.algo != "shard_block":
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

    def _block(self, k: int) -> np.ndarray:
        """py1br: the permutation of block ``k`` (offsets inside the block)."""
        if self._block_cache is None or self._block_cache[0] != k:
            lo = int(self.block_ends[k - 1]) if k else 0
            self._block_cache = (k, _rng(self.seed, self.epoch, -2 - k).permutation(int(self.block_ends[k]) - lo))
        return self._block_cache[1]

    def locate(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``[start, stop)`` as two arrays, ``(shard, row)`` of each, in reading order."""
        stop = min(stop, self.total)
        if start >= stop:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self.shuffle and self.algo == "py1br":
            parts, pos = [], start
            while pos < stop:
                k = int(np.searchsorted(self.block_ends, pos, side="right"))
                lo = int(self.block_ends[k - 1]) if k else 0
                hi = min(stop, int(self.block_ends[k]))
                parts.append(lo + self._block(k)[pos - lo : hi - lo])
                pos = hi
            flat = np.concatenate(parts)  # positions in the shard-permuted concatenation
            k = np.searchsorted(self.ends, flat, side="right")
            return self.shard_order[k].astype(np.int64), flat - self.starts[k]
        shards, rows = [], []
        for shard, r in self.iter_segments(start, stop):
            shards.append(np.full(len(r), shard, np.int64))
            rows.append(r)
        return np.concatenate(shards), np.concatenate(rows)

    def segments(self, start: int, stop: int) -> list[tuple[int, np.ndarray]]:
        """Positions ``[start, stop)`` as ``(shard, rows)`` runs, in reading order."""
        return list(self.iter_segments(start, stop))

    def iter_segments(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``segments`` one run at a time (of one shard), so a whole epoch never sits in memory."""
        stop = min(stop, self.total)
        if self.shuffle and self.algo == "py1br":
            for lo in range(start, stop, 1 << 14):
                shards, rows = self.locate(lo, min(stop, lo + (1 << 14)))
                cut = np.flatnonzero(np.diff(shards)) + 1
                for s, r in zip(np.split(shards, cut), np.split(rows, cut), strict=True):
                    yield int(s[0]), r
            return
        pos = start
        while pos < stop:
            k = int(np.searchsorted(self.ends, pos, side="right"))
            shard = int(self.shard_order[k])
            lo = pos - int(self.starts[k])
            hi = min(stop, int(self.ends[k])) - int(self.starts[k])
            yield shard, self.rows_of(shard)[lo:hi]
            pos += hi - lo

    def shards_ahead(self, start: int, count: int) -> list[int]:
        """The shards positions ``[start, start + count)`` touch, in first-touch order (for prefetching)."""
        shards, _ = self.locate(start, start + count)
        _, first = np.unique(shards, return_index=True)
        return [int(s) for s in shards[np.sort(first)]]
