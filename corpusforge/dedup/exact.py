"""Exact deduplication across the whole run, out of core.

Per task, each document's normalized text is hashed (xxh3-128) and the task's hashes are written
sorted. The decide stage is cut into hash-range partitions: each reads only its slice of every
task's file (memory-mapped), so memory grows with corpus size / partitions, not with the corpus.
The first occurrence in corpus order (task, then row) is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from corpusforge.dedup.clusters import cluster_size_counts
from corpusforge.document import Document
from corpusforge.registry import register
from corpusforge.state import atomic_save_npy as _save
from corpusforge.step import CorpusStep

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

SIG_DTYPE = np.dtype([("hi", "<u8"), ("lo", "<u8"), ("row", "<u4")])
REMOVED_DTYPE = np.dtype([("task", "<u4"), ("row", "<u4"), ("of_task", "<u4"), ("of_row", "<u4")])
_SPACE = re.compile(r"\s+")


@register("exact_dedup")
class ExactDedup(CorpusStep):
    """Remove documents whose normalized text equals an earlier document's (128-bit hash).

    Normalization: whitespace runs collapsed and ends stripped (``collapse_whitespace``), and
    optionally lower-cased. ``partitions`` sets how many hash ranges the decide stage runs as
    separate tasks (raise it for billions of documents: memory per task ~ 20 bytes x docs / partitions).
    """

    def __init__(self, lowercase: bool = False, collapse_whitespace: bool = True, partitions: int = 16):
        if not 1 <= partitions <= 4096:
            raise ValueError("partitions must be between 1 and 4096")
        self.lowercase, self.collapse_whitespace = lowercase, collapse_whitespace
        self.n_partitions = partitions

    def digest(self, text: str) -> bytes:
        if self.collapse_whitespace:
            text = _SPACE.sub(" ", text).strip()
        if self.lowercase:
            text = text.lower()
        return xxhash.xxh3_128_digest(text.encode("utf-8", "surrogatepass"))

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        digests: list[bytes] = []
        digest = self.digest
        for doc in docs:
            # Media documents are compared by their text and their media's content hashes.
            digests.append(digest(doc.text + "".join(m.get("hash", "") for m in doc.media) if doc.media else doc.text))
            yield doc
        pairs = np.frombuffer(b"".join(digests), dtype=">u8").reshape(-1, 2)
        sig = np.empty(len(digests), dtype=SIG_DTYPE)
        sig["hi"], sig["lo"] = pairs[:, 0], pairs[:, 1]
        sig["row"] = np.arange(len(digests), dtype=np.uint32)
        sig.sort(order=["hi", "lo", "row"])
        _save(self.stage_dir / "sig" / f"task_{ctx.task:06d}.npy", sig)

    def partitions(self) -> int:
        return self.n_partitions

    def _bounds(self, partition: int) -> tuple[int, int]:
        width = (1 << 64) // self.n_partitions
        lo = partition * width
        hi = (1 << 64) if partition == self.n_partitions - 1 else lo + width
        return lo, hi

    def decide(self, partition: int, n_tasks: int) -> dict[str, Any]:
        lo, hi = self._bounds(partition)
        chunks, tasks = [], []
        for t in range(n_tasks):
            sig = np.load(self.stage_dir / "sig" / f"task_{t:06d}.npy", mmap_mode="r")
            a = np.searchsorted(sig["hi"], np.uint64(lo), side="left")
            b = len(sig) if hi >= (1 << 64) else np.searchsorted(sig["hi"], np.uint64(hi), side="left")
            if b > a:
                chunks.append(np.array(sig[a:b]))
                tasks.append(np.full(b - a, t, dtype=np.uint32))
        removed = np.empty(0, dtype=REMOVED_DTYPE)
        n = 0
        sizes: dict[str, int] = {}
        if chunks:
            sig = np.concatenate(chunks)
            task = np.concatenate(tasks)
            n = len(sig)
            order = np.lexsort((sig["row"], task, sig["lo"], sig["hi"]))
            sig, task = sig[order], task[order]
            same = np.zeros(n, dtype=bool)
            same[1:] = (sig["hi"][1:] == sig["hi"][:-1]) & (sig["lo"][1:] == sig["lo"][:-1])
            # Index of each group's first member, propagated forward over the group.
            first = np.where(~same, np.arange(n), 0)
            np.maximum.accumulate(first, out=first)
            dup = np.flatnonzero(same)
            removed = np.empty(len(dup), dtype=REMOVED_DTYPE)
            removed["task"], removed["row"] = task[dup], sig["row"][dup]
            removed["of_task"], removed["of_row"] = task[first[dup]], sig["row"][first[dup]]
            removed.sort(order=["task", "row"])
            group = np.diff(np.append(np.flatnonzero(~same), n))
            sizes = cluster_size_counts(group[group > 1])
        _save(self.stage_dir / "removed" / f"part_{partition:04d}.npy", removed)
        return {"documents": int(n), "duplicates": int(len(removed)), "cluster_sizes": sizes}

    def removed(self, task: int) -> dict[int, str]:
        out: dict[int, str] = {}
        for p in range(self.n_partitions):
            rem = np.load(self.stage_dir / "removed" / f"part_{p:04d}.npy", mmap_mode="r")
            if not len(rem):
                continue
            a, b = np.searchsorted(rem["task"], [task, task + 1])
            for row in rem["row"][a:b]:
                out[int(row)] = "exact_duplicate"
        return out
