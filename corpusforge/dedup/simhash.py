"""SimHash near-duplicate removal: 64-bit fingerprints, Hamming threshold, permuted-block tables.

Fingerprint (Charikar 2002): every word n-gram shingle (normalized as in ``shingles``) votes +1/-1
on each of 64 bits by its 64-bit hash; a bit is set when its vote is positive. Candidate search
(Manku et al. 2007): split the 64 bits into ``max_distance + 1`` blocks; two fingerprints within
Hamming distance k agree exactly on at least one block (pigeonhole), so each block is one bucket
table (one decide partition), and candidates are verified by popcount of the XOR.
"""

from __future__ import annotations

import numpy as np

from corpusforge.dedup.clusters import ClusterDedup
from corpusforge.dedup.shingles import shingle_hashes
from corpusforge.registry import register

_BITS = np.arange(64, dtype=np.uint64)


def simhash_fingerprints(hashes: np.ndarray, doc: np.ndarray, n_docs: int, chunk: int = 1 << 16) -> np.ndarray:
    """``(n_docs,)`` uint64 SimHash fingerprints of shingle hashes grouped by ``doc``."""
    votes = np.zeros((n_docs, 64), dtype=np.int64)
    counts = np.bincount(doc, minlength=n_docs) if len(doc) else np.zeros(n_docs, np.int64)
    for s in range(0, len(hashes), chunk):
        h, d = hashes[s : s + chunk], doc[s : s + chunk]
        bits = ((h[:, None] >> _BITS[None, :]) & np.uint64(1)).astype(np.int64)
        cut = np.flatnonzero(np.diff(d)) + 1
        firsts = np.concatenate([[0], cut])
        votes[d[firsts]] += np.add.reduceat(bits, firsts, axis=0)
    # bit set when more than half the shingles have it set (vote = 2 x ones - count > 0)
    on = (2 * votes > counts[:, None]).astype(np.uint64)
    return (on << _BITS[None, :]).sum(axis=1, dtype=np.uint64)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    return np.unpackbits(x.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


@register("simhash_dedup")
class SimHashDedup(ClusterDedup):
    """Remove documents whose 64-bit SimHash is within ``max_distance`` bits of another's.

    ``ngram`` 3 (shorter than MinHash's 5: SimHash weighs shared shingles, so more features
    per document steady the votes); ``max_distance`` 3 of 64 bits (Manku et al. 2007 used 3).
    """

    reason = "near_duplicate"
    # A block bucket mixes near-duplicates with unrelated documents that share 64/(k+1) bits, so
    # pair every member with the next 64 (all pairs in buckets up to 65 members).
    pair_window = 64

    def __init__(self, max_distance: int = 3, ngram: int = 3, quality_key: str | None = "quality_score",
                 index_dir: str | None = None, batch_docs: int = 2048):
        if not 0 <= max_distance <= 15:
            raise ValueError("max_distance must be between 0 and 15 bits")
        if ngram < 1:
            raise ValueError("ngram must be >= 1")
        self.max_distance, self.ngram = max_distance, ngram
        blocks = max_distance + 1
        edges = np.linspace(0, 64, blocks + 1).round().astype(int)
        self.blocks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        super().__init__(quality_key=quality_key, index_dir=index_dir, batch_docs=batch_docs)

    def params(self) -> dict[str, object]:
        return {"method": "simhash", "ngram": self.ngram, "max_distance": self.max_distance}

    def partitions(self) -> int:
        return len(self.blocks)

    def sign(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        hashes, doc = shingle_hashes(texts, self.ngram)
        fp = simhash_fingerprints(hashes, doc, len(texts))
        keys = np.empty((len(self.blocks), len(texts)), dtype=np.uint64)
        for i, (a, b) in enumerate(self.blocks):
            mask = np.uint64(((1 << (b - a)) - 1) << a)
            # the block index is mixed in so equal blocks of different tables never share a key
            keys[i] = (fp & mask) ^ np.uint64(i << 60 if b - a <= 60 else 0)
        return fp[:, None], keys

    def similar(self, sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
        return popcount64(sig_a[:, 0] ^ sig_b[:, 0]) <= self.max_distance
