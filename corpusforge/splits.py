"""Which split a document goes to and how often a mixture repeats it: pure functions of its id and
the seed, so every task, worker count and resumed run agrees (``sharding.splits``, ``mixture``,
``max_records``)."""

from __future__ import annotations

import xxhash

NO_CAP = 1 << 64  # above every 64-bit hash: sources without a cap keep every document


def split_thresholds(splits: dict[str, float]) -> list[float]:
    """Cumulative split ratios, the last forced to 1.0 so rounding never leaves a document out."""
    acc, cuts = 0.0, []
    for ratio in splits.values():
        acc += ratio
        cuts.append(acc)
    cuts[-1] = 1.0
    return cuts


def split_of(doc_id: str, seed: int, names: list[str], cuts: list[float]) -> str:
    """The split of a document: a pure function of its id and the seed."""
    if len(names) == 1:
        return names[0]
    u = xxhash.xxh3_64_intdigest(doc_id.encode(), seed=seed & 0xFFFFFFFFFFFFFFFF) / 2.0**64
    for name, cut in zip(names, cuts, strict=True):
        if u < cut:
            return name
    return names[-1]


def mixture_copies(doc_id: str, seed: int, weight: float) -> int:
    """How often a document goes into the shards under mixture ``weight``: ``floor(weight)``
    times, plus once more with probability ``weight - floor(weight)``, decided by its id."""
    whole = int(weight)
    u = xxhash.xxh3_64_intdigest(doc_id.encode(), seed=(seed + 1) & 0xFFFFFFFFFFFFFFFF) / 2.0**64
    return whole + (u < weight - whole)


def sample_hash(doc_id: str, seed: int) -> int:
    """The key ``max_records`` samples by: the smallest hashes of a source's ids are kept."""
    return xxhash.xxh3_64_intdigest(doc_id.encode(), seed=(seed + 2) & 0xFFFFFFFFFFFFFFFF)
