"""Weighted blending of several outputs at load time, as a pure function of the stream index.

The blended stream is cut into chunks of ``CHUNK`` samples. Chunk ``j`` holds
``floor(w_s * CHUNK * (j + 1)) - floor(w_s * CHUNK * j)`` samples of each source ``s`` (the
source of largest weight takes the remainder), in a seeded random order inside the chunk. So the
first ``n`` samples hold each source's share to within a sample per source and chunk, and the
``k``-th sample of a source and its place in the stream follow from ``(seed, j)`` alone: resume is
exact at any position, as for one output. Each source then reads its own stream of passes (its
own shuffle), so a source of weight above its size share repeats, one below is subsampled.
"""

from __future__ import annotations

import numpy as np

from corpusforge.loader.order import _rng

CHUNK = 4096


class Blend:
    """Which source, and which of its samples, each index of the blended stream is."""

    def __init__(self, weights: list[float], seed: int):
        w = np.asarray(weights, dtype=np.float64)
        if len(w) < 1 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"blend weights must be non-negative numbers, not all zero; got {list(weights)}")
        self.weights = w / w.sum()
        if len(w) - 1 > CHUNK * self.weights.max():
            raise ValueError(f"at most {CHUNK} sources can be blended")
        self.big = int(np.argmax(self.weights))
        self.seed = seed

    def before(self, j: int) -> np.ndarray:
        """Samples of each source in the first ``j`` chunks."""
        a = np.floor(self.weights * CHUNK * j).astype(np.int64)
        a[self.big] = CHUNK * j - (a.sum() - a[self.big])
        return a

    def assign(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """For stream indices ``[start, stop)``: the source of each, and its index in that source's stream."""
        sources, ks = [], []
        for j in range(start // CHUNK, -(-stop // CHUNK)):
            base, after = self.before(j), self.before(j + 1)
            seq = _rng(self.seed, -7, j).permutation(np.repeat(np.arange(len(base)), after - base))
            k = np.empty(CHUNK, np.int64)
            for s in np.unique(seq).tolist():
                at = np.flatnonzero(seq == s)
                k[at] = base[s] + np.arange(len(at))
            lo, hi = max(start - j * CHUNK, 0), min(stop - j * CHUNK, CHUNK)
            sources.append(seq[lo:hi])
            ks.append(k[lo:hi])
        if not sources:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(sources).astype(np.int64), np.concatenate(ks)
