"""Out-of-core near-duplicate clustering shared by MinHash and SimHash dedup.

On disk, under the step's ``stage_dir``:

- ``sig/task_NNNNNN.npy``   per task, one signature row per document (row = yield order)
- ``keys/task_NNNNNN.npy``  per task, ``(partitions, n)`` uint64 bucket keys (LSH bands, SimHash blocks)
- ``quality/``, ``ids/``    per task, the keeper's quality score (NaN if absent) and document ids
- ``pairs/part_NNNN.npy``   per decide partition, verified candidate pairs of global document numbers
- ``result/removed.npy``    after ``finalize``: (task, row, of_task, of_row, cluster) of every removed row
- ``result/clusters.jsonl`` audit: one line per member of a cluster with its id, cluster, keeper id

A document's global number is its position in source order (earlier-run index documents first, then
task by task, row by row). Decide partition ``p`` sorts every document's key ``p`` (~40 bytes per
document in memory), pairs documents inside equal-key buckets (each with the next ``window`` members
and the bucket's first), verifies pairs on full signatures and writes them. ``finalize`` reads the
pairs and finds connected components over only the documents that occur in a pair (memory: ~40 bytes
per pair), so memory grows with the number of duplicates, not with the corpus.

Keeper per cluster: an earlier run's document (already published) if any, else the highest
``quality_key`` score (documents with a score beat those without), then earliest source order;
source order is unique, so the smallest id (the documented last tie-break) is never reached.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import orjson

from corpusforge.document import Document
from corpusforge.layout import OutputLayout
from corpusforge.state import atomic_save_npy as _save
from corpusforge.state import atomic_write_bytes, atomic_write_json, read_json
from corpusforge.step import CorpusStep

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

REMOVED_DTYPE = np.dtype([("task", "<u4"), ("row", "<u4"), ("of_task", "<i8"), ("of_row", "<u4"),
                          ("cluster", "<u4")])
# A signing batch closes at ``batch_docs`` documents or this many characters: its shingle arrays
# take tens of bytes per character (byte buffer, masks, int64 word offsets and hashes), and 2,048
# books made one batch of a whole task. Signatures are per document, so batches change no output.
SIGN_BATCH_CHARS = 4 << 20
_WINDOW = 4


def bucket_pairs(keys: np.ndarray, members: np.ndarray, window: int = _WINDOW) -> np.ndarray:
    """Pairs ``(i, j)`` of ``members`` sharing a key: each with the next ``window`` and the first."""
    order = np.argsort(keys, kind="stable")
    k, g = keys[order], members[order]
    n = len(k)
    out = []
    for d in range(1, window + 1):
        if d >= n:
            break
        same = np.flatnonzero(k[d:] == k[:-d])
        if not len(same):
            break
        out.append(np.stack([g[same], g[same + d]], axis=1))
    if n > window + 1:
        new = np.ones(n, dtype=bool)
        new[1:] = k[1:] != k[:-1]
        first = np.where(new, np.arange(n), 0)
        np.maximum.accumulate(first, out=first)
        far = np.flatnonzero(np.arange(n) - first > window)
        if len(far):
            out.append(np.stack([g[first[far]], g[far]], axis=1))
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


def cluster_size_counts(sizes: np.ndarray) -> dict[str, int]:
    """``{"2": 40, "3": 5}``: how many clusters have each size (JSON keys; for stats and the card)."""
    values, counts = np.unique(np.asarray(sizes, dtype=np.int64), return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Pairs ordered (small, large) within and sorted, without repeats or self-pairs."""
    if not len(pairs):
        return pairs.reshape(0, 2)
    lo, hi = pairs.min(axis=1), pairs.max(axis=1)
    keep = lo != hi
    both = np.unique(np.stack([lo[keep], hi[keep]], axis=1), axis=0)
    return both


def connected_components(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(nodes, label)``: every node occurring in ``pairs`` and its component's smallest node.

    Min-label propagation with pointer jumping, vectorised; memory is O(pairs).
    """
    nodes, inv = np.unique(pairs, return_inverse=True)
    inv = inv.reshape(-1, 2)
    u, v = inv[:, 0], inv[:, 1]
    lab = np.arange(len(nodes))
    while True:
        m = np.minimum(lab[u], lab[v])
        before = lab.copy()
        np.minimum.at(lab, u, m)
        np.minimum.at(lab, v, m)
        while True:  # pointer jumping: every node points at its label's label
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                break
            lab = nxt
        if np.array_equal(lab, before):
            break
    return nodes, nodes[lab]


def with_media_keys(keys: np.ndarray, docs: list[Document]) -> np.ndarray:
    """Bucket ``keys`` (partitions, n) with each media document's ``media_key`` mixed in, so only
    documents carrying the same media (by content hash) share a bucket; text documents unchanged."""
    if not any(d.media for d in docs):
        return keys
    from corpusforge.dedup.shingles import fmix64
    from corpusforge.media.items import media_key

    mk = np.fromiter((media_key(d) for d in docs), dtype=np.uint64, count=len(docs))
    return np.where(mk != 0, fmix64(keys ^ mk[None, :]), keys)


class Sources:
    """Every signed document source in global order: earlier-run index generations, then tasks."""

    def __init__(self, folders: list[tuple[Path, int]], n_index: int):
        self.folders = folders  # (folder, task) in global order
        self.counts = np.array([self.count(f, t) for f, t in folders], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.n_index_sources = n_index
        self.index_names: list[str] = []
        self.n_index_docs = int(self.offsets[n_index])
        self.total = int(self.offsets[-1])

    @staticmethod
    def count(folder: Path, task: int) -> int:
        return int(np.load(folder / "ids" / f"task_{task:06d}.npy", mmap_mode="r").shape[0])

    def load(self, kind: str, i: int) -> np.ndarray:
        folder, t = self.folders[i]
        return np.load(folder / kind / f"task_{t:06d}.npy", mmap_mode="r")

    def gather(self, kind: str, g: np.ndarray) -> np.ndarray:
        """Rows of ``kind`` (sig, quality, ids) for global numbers ``g``, in ``g``'s order."""
        src = np.searchsorted(self.offsets, g, side="right") - 1
        out = None
        for s in np.unique(src):
            sel = np.flatnonzero(src == s)
            rows = np.asarray(self.load(kind, int(s))[g[sel] - self.offsets[s]])
            if out is None:
                out = np.empty((len(g), *rows.shape[1:]), dtype=rows.dtype)
            elif rows.dtype != out.dtype and rows.dtype.kind == "U":
                out = out.astype(np.result_type(out.dtype, rows.dtype))
            out[sel] = rows
        if out is None:
            return np.empty(0)
        return out


class ClusterDedup(CorpusStep):
    """Base of signature + bucket + cluster dedup steps; subclasses say how to sign and compare."""

    reason: ClassVar[str] = "near_duplicate"
    pair_window: ClassVar[int] = _WINDOW  # pairs per bucket member (see bucket_pairs)

    def __init__(self, quality_key: str | None = "quality_score", index_dir: str | None = None,
                 batch_docs: int = 2048):
        if batch_docs < 1:
            raise ValueError("batch_docs must be >= 1")
        self.quality_key, self.batch_docs = quality_key, batch_docs
        self.index_dir = Path(index_dir).expanduser().resolve() if index_dir else None

    @abstractmethod
    def params(self) -> dict[str, object]:
        """Everything that must match for signatures of two runs to be comparable."""

    @abstractmethod
    def sign(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(signatures (n, w), keys (partitions, n) uint64)`` for a batch of texts."""

    @abstractmethod
    def similar(self, sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
        """Boolean per candidate pair (row i of ``sig_a`` against row i of ``sig_b``): a duplicate?"""

    # -- per task: sign -----------------------------------------------------------------------------

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        sigs, keys, quality, ids = [], [], [], []
        qk = self.quality_key
        batch: list[Document] = []

        def flush() -> None:
            s, k = self.sign([d.text for d in batch])
            k = with_media_keys(k, batch)
            sigs.append(s)
            keys.append(k)

        chars = 0
        for doc in docs:
            batch.append(doc)
            chars += len(doc.text)
            q = doc.metadata.get(qk) if qk else None
            quality.append(float(q) if isinstance(q, (int, float)) else np.nan)
            ids.append(doc.id)
            if len(batch) >= self.batch_docs or chars >= SIGN_BATCH_CHARS:
                flush()
                yield from batch
                batch, chars = [], 0
        if batch:
            flush()
            yield from batch
        if not sigs:
            s, k = self.sign([])
            sigs, keys = [s], [k]
        name = f"task_{ctx.task:06d}.npy"
        _save(self.stage_dir / "sig" / name, np.concatenate(sigs))
        _save(self.stage_dir / "keys" / name, np.concatenate(keys, axis=1))
        _save(self.stage_dir / "quality" / name, np.asarray(quality, dtype=np.float32))
        # ids last: its presence marks the task's files complete (Sources.count reads it).
        _save(self.stage_dir / "ids" / name, np.asarray(ids, dtype=str) if ids else np.empty(0, "U1"))

    # -- index of earlier runs ------------------------------------------------------------------------

    def _generation_name(self) -> str:
        return hashlib.sha256(str(self.stage_dir.resolve()).encode()).hexdigest()[:16]

    def _index_generations(self) -> list[Path]:
        if self.index_dir is None or not self.index_dir.exists():
            return []
        own = self._generation_name()
        gens = sorted(p for p in self.index_dir.glob("gen_*") if p.is_dir() and not p.name.endswith(own))
        if gens:
            stored = read_json(self.index_dir / "params.json")
            if stored != orjson.loads(orjson.dumps(self.params())):
                raise ValueError(f"index_dir {self.index_dir} holds signatures made with {stored}, "
                                 f"not {self.params()}: use a new index_dir or the same settings")
        return gens

    def _sources(self, n_tasks: int) -> Sources:
        folders: list[tuple[Path, int]] = []
        gens = self._index_generations()
        for gen in gens:
            n = len(list((gen / "ids").glob("task_*.npy")))
            folders += [(gen, t) for t in range(n)]
        n_index = len(folders)
        folders += [(self.stage_dir, t) for t in range(n_tasks)]
        src = Sources(folders, n_index)
        src.index_names = [g.name for g in gens]
        return src

    # -- decide: one partition = one band / block table -----------------------------------------------

    def decide(self, partition: int, n_tasks: int) -> dict[str, Any]:
        src = self._sources(n_tasks)
        keys = np.empty(src.total, dtype=np.uint64)
        for i in range(len(src.folders)):
            keys[src.offsets[i] : src.offsets[i + 1]] = src.load("keys", i)[partition]
        pairs = bucket_pairs(keys, np.arange(src.total, dtype=np.int64), self.pair_window)
        del keys
        pairs = unique_pairs(pairs)
        pairs = pairs[pairs[:, 1] >= src.n_index_docs]  # pairs among earlier outputs are settled
        candidates = len(pairs)
        if len(pairs):  # in slices: gathered signature rows stay bounded (1 << 16 pairs at a time)
            ok = np.concatenate([self.verify_pairs(src, pairs[i : i + (1 << 16)])
                                 for i in range(0, len(pairs), 1 << 16)])
            pairs = pairs[ok]
        _save(self.stage_dir / "pairs" / f"part_{partition:04d}.npy", pairs)
        atomic_write_json(self.stage_dir / "pairs" / f"part_{partition:04d}.json", {"index": src.index_names})
        own = src.total - src.n_index_docs if partition == 0 else 0  # summed over partitions in stats
        return {"documents": own, "candidate_pairs": candidates,
                "verified_pairs": int(len(pairs))}

    def verify_pairs(self, src: Sources, pairs: np.ndarray) -> np.ndarray:
        """Boolean mask of the candidate ``pairs`` (global numbers) that are duplicates."""
        return self.similar(src.gather("sig", pairs[:, 0]), src.gather("sig", pairs[:, 1]))

    def staged_texts(self, src: Sources, nodes: np.ndarray) -> dict[int, str]:
        """Texts of this run's documents ``nodes`` (global numbers), re-read from the staged Parquet.

        The staged file of the segment this step ends holds exactly the rows it signed
        (``OutputLayout.staged_of_step``). Only one task's text column is in memory at a time, plus
        the requested rows.
        """
        import pyarrow.parquet as pq

        layout = OutputLayout.of_step(self.stage_dir)
        out: dict[int, str] = {}
        source = np.searchsorted(src.offsets, nodes, side="right") - 1
        for s in np.unique(source):
            t = int(s) - src.n_index_sources
            rows = nodes[source == s] - src.offsets[s]
            col = pq.read_table(layout.staged_of_step(self.stage_dir, t), columns=["text"]).column("text")
            for g, text in zip(nodes[source == s], col.take(rows).to_pylist(), strict=True):
                out[int(g)] = text
        return out

    # -- finalize: clusters, keepers, audit, index --------------------------------------------------------

    def finalize(self, n_tasks: int) -> dict[str, Any]:
        src = self._sources(n_tasks)
        for p in range(self.partitions()):
            seen = read_json(self.stage_dir / "pairs" / f"part_{p:04d}.json")["index"]
            if seen != src.index_names:  # another run published to index_dir meanwhile: redo this one
                self.decide(p, n_tasks)
        parts = [np.load(self.stage_dir / "pairs" / f"part_{p:04d}.npy") for p in range(self.partitions())]
        pairs = unique_pairs(np.concatenate(parts)) if parts else np.empty((0, 2), np.int64)
        del parts
        removed = np.empty(0, dtype=REMOVED_DTYPE)
        # One growing buffer, not a list of lines: orjson hands back each small line in a ~4 KB
        # allocation, which made the audit ~4 KB per clustered document in memory.
        audit = bytearray()
        n_clusters = 0
        sizes: dict[str, int] = {}
        if len(pairs):
            nodes, label = connected_components(pairs)
            quality = src.gather("quality", nodes).astype(np.float64)
            score = np.where(np.isnan(quality), -np.inf, quality)
            from_index = nodes < src.n_index_docs
            order = np.lexsort((nodes, -score, ~from_index, label))
            nodes, label, from_index = nodes[order], label[order], from_index[order]
            first = np.ones(len(nodes), dtype=bool)
            first[1:] = label[1:] != label[:-1]
            cluster = np.cumsum(first) - 1
            n_clusters = int(first.sum())
            sizes = cluster_size_counts(np.bincount(cluster))
            keeper = nodes[first][cluster]
            ids = src.gather("ids", nodes)
            src_of = np.searchsorted(src.offsets, nodes, side="right") - 1
            row_of = nodes - src.offsets[src_of]
            task_of = src_of - src.n_index_sources  # negative: a document of an earlier run
            kidx = np.flatnonzero(first)[cluster]
            for i in range(len(nodes)):
                audit += orjson.dumps({
                    "cluster": int(cluster[i]), "id": str(ids[i]), "task": int(task_of[i]), "row": int(row_of[i]),
                    "kept": bool(first[i]), "duplicate_of": None if first[i] else str(ids[kidx[i]]),
                }, option=orjson.OPT_APPEND_NEWLINE)
            rm = np.flatnonzero(~first & ~from_index)
            removed = np.empty(len(rm), dtype=REMOVED_DTYPE)
            removed["task"], removed["row"] = task_of[rm], row_of[rm]
            removed["of_task"], removed["of_row"] = task_of[kidx[rm]], row_of[kidx[rm]]
            removed["cluster"] = cluster[rm]
            removed.sort(order=["task", "row"])
            del keeper
        atomic_write_bytes(self.stage_dir / "result" / "clusters.jsonl", audit)
        _save(self.stage_dir / "result" / "removed.npy", removed)
        if self.index_dir is not None:
            self._publish(n_tasks, removed)
        return {"clusters": n_clusters, "removed": int(len(removed)), "pairs": int(len(pairs)), "cluster_sizes": sizes}

    def _publish(self, n_tasks: int, removed: np.ndarray) -> None:
        """Add this run's surviving signatures to ``index_dir`` as one generation (atomic rename)."""
        assert self.index_dir is not None
        self.index_dir.mkdir(parents=True, exist_ok=True)
        if not (self.index_dir / "params.json").exists():
            atomic_write_json(self.index_dir / "params.json", self.params())
        own = self._generation_name()
        for old in self.index_dir.glob(f"gen_*_{own}"):
            shutil.rmtree(old)
        seq = len(list(self.index_dir.glob("gen_*")))
        tmp = self.index_dir / f".tmp_gen_{own}_{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        for t in range(n_tasks):
            name = f"task_{t:06d}.npy"
            a, b = np.searchsorted(removed["task"], [t, t + 1])
            n = int(np.load(self.stage_dir / "ids" / name, mmap_mode="r").shape[0])
            keep = np.ones(n, dtype=bool)
            keep[removed["row"][a:b]] = False
            for kind in ("sig", "quality", "ids"):
                _save(tmp / kind / name, np.load(self.stage_dir / kind / name)[keep])
            _save(tmp / "keys" / name, np.load(self.stage_dir / "keys" / name)[:, keep])
        os.replace(tmp, self.index_dir / f"gen_{seq:06d}_{own}")

    # -- next stage: which rows go ----------------------------------------------------------------------

    def removed(self, task: int) -> dict[int, str]:
        rem = np.load(self.stage_dir / "result" / "removed.npy", mmap_mode="r")
        a, b = np.searchsorted(rem["task"], [task, task + 1])
        return {int(r): self.reason for r in rem["row"][a:b]}
