"""Document length histograms with fixed, log-spaced bins, so memory stays flat in corpus size.

Every task counts into the same bins, so a stage sums its tasks' lists element by element and
``stats.json`` holds one list of counts per histogram, never a list of lengths.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator

import numpy as np

from corpusforge.document import Document

# Lower bin edges in characters: 0, then four bins per decade (1, 2, 3, 6, 10, 18, 32, 56, 100, ...)
# up to 10^8; the last bin is open. Fixed, so histograms of any run or task add up.
LENGTH_EDGES: tuple[int, ...] = (0, *sorted({round(10 ** (i / 4)) for i in range(33)}))


class LengthHistogram:
    """Counts of document lengths (characters) per bin of ``LENGTH_EDGES``."""

    def __init__(self) -> None:
        self.counts = [0] * len(LENGTH_EDGES)

    def add(self, n: int) -> None:
        self.counts[bisect_right(LENGTH_EDGES, n) - 1] += 1

    def add_lengths(self, lengths: np.ndarray) -> None:
        """Count many lengths at once (what ``add`` does for each, vectorised)."""
        bins = np.searchsorted(np.asarray(LENGTH_EDGES), lengths, side="right") - 1
        for i, n in enumerate(np.bincount(bins, minlength=len(LENGTH_EDGES)).tolist()):
            self.counts[i] += n

    def counting(self, docs: Iterator[Document]) -> Iterator[Document]:
        """Pass ``docs`` through unchanged, counting each one's text length."""
        counts, edges = self.counts, LENGTH_EDGES
        for doc in docs:
            counts[bisect_right(edges, len(doc.text)) - 1] += 1
            yield doc


def merge_histograms(per_task: Iterable[list[int] | None]) -> list[int]:
    """Element-wise sum of per-task count lists (``None``: a task record from before histograms)."""
    total = [0] * len(LENGTH_EDGES)
    for counts in per_task:
        for i, n in enumerate(counts or ()):
            total[i] += n
    return total


def bin_label(i: int) -> str:
    """``"100-177"`` for bin ``i`` (inclusive range of lengths), ``"≥100000000"`` for the last one."""
    lo = LENGTH_EDGES[i]
    if i == len(LENGTH_EDGES) - 1:
        return f"≥{lo:,}"
    hi = LENGTH_EDGES[i + 1] - 1
    return f"{lo:,}" if hi == lo else f"{lo:,}-{hi:,}"
