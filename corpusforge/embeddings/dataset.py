"""Read one split of ``embeddings/``: text, vector and metadata per row, batches, interpolation, a DataLoader.

Vectors are memory-mapped from the SafeTensors parts (a row is read when indexed); a part's table is
loaded with polars when one of its rows is first asked for. The dataset is map-style (``len`` and
``ds[i]``), so ``torch.utils.data.DataLoader`` takes it directly; ``dataloader`` adds the collator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from corpusforge.embeddings.store import EMBEDDINGS_DIR, INDEX_NAME, TENSOR, _polars
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout
from corpusforge.state import read_json


class EmbeddingDataset:
    """Rows of ``split`` in ``root`` (a run's output folder or its ``embeddings`` folder), in part order.

    ``ds[i]`` is ``{"text", "embedding" (float32, (dim,)), "metadata"}``; the metadata holds
    ``text_id``, ``token_count``, ``char_count``, ``split`` and the document's own metadata.
    """

    def __init__(self, root: str | os.PathLike[str], split: str = "train"):
        root = Path(root)
        layout = OutputLayout(root)
        self.root = layout.embeddings if layout.embeddings_index.exists() else root
        if not (self.root / INDEX_NAME).exists():
            raise CorpusforgeError(f"{root}: no {EMBEDDINGS_DIR}/{INDEX_NAME} (run a recipe with an embeddings "
                                   "section, or corpusforge embed OUTPUT)")
        self.index = read_json(self.root / INDEX_NAME)
        if split not in self.index["splits"]:
            raise CorpusforgeError(f"{self.root}: no split {split!r}; splits: {', '.join(self.index['splits'])}")
        self.split = split
        self.parts = self.index["splits"][split]["parts"]
        self.offsets = np.cumsum([0] + [p["rows"] for p in self.parts])
        self.normalized = bool(self.index.get("normalized", True))
        self.dim = int(self.index.get("dim") or 0)
        self._matrices: dict[int, np.ndarray] = {}
        self._tables: dict[int, dict[str, list[Any]]] = {}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers reopen the memory maps instead of receiving a pickled copy of every vector
        return {**self.__dict__, "_matrices": {}, "_tables": {}}

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for split {self.split!r} of {n} rows")
        i %= n
        part = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return part, i - int(self.offsets[part])

    def _matrix(self, part: int) -> np.ndarray:
        if part not in self._matrices:
            from corpusforge.loader.reader import read_safetensors

            path = self.root / self.parts[part]["path"]
            arr = read_safetensors(path)[TENSOR]
            if len(arr) != self.parts[part]["rows"]:
                raise CorpusforgeError(f"{path}: {len(arr)} rows, the index says {self.parts[part]['rows']}")
            self._matrices[part] = arr
        return self._matrices[part]

    def _table(self, part: int) -> dict[str, list[Any]]:
        if part not in self._tables:
            if len(self._tables) >= 8:  # a bounded number of part tables in memory
                self._tables.pop(next(iter(self._tables)))
            self._tables[part] = _polars().read_parquet(self.root / self.parts[part]["table"]).to_dict(as_series=False)
        return self._tables[part]

    def embedding(self, i: int) -> np.ndarray:
        """Row ``i``'s vector as float32."""
        part, row = self._locate(i)
        return np.asarray(self._matrix(part)[row], dtype=np.float32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        part, row = self._locate(int(i))
        t = self._table(part)
        meta = {"text_id": t["text_id"][row], "token_count": t["token_count"][row], "char_count": t["char_count"][row],
                "split": self.split, **orjson.loads(t["metadata"][row])}
        return {"text": t["text"][row], "embedding": np.asarray(self._matrix(part)[row], dtype=np.float32),
                "metadata": meta}

    def get_batch(self, indices: list[int] | np.ndarray) -> dict[str, Any]:
        """Rows ``indices`` at once: ``{"texts": [...], "embeddings": (k, dim) float32, "metadata": [...]}``."""
        rows = [self[int(i)] for i in indices]
        emb = np.stack([r["embedding"] for r in rows]) if rows else np.empty((0, self.dim), np.float32)
        return {"texts": [r["text"] for r in rows], "embeddings": emb, "metadata": [r["metadata"] for r in rows]}

    def interpolate_embeddings(self, i: int, j: int, alpha: float,
                               method: Literal["slerp", "lerp"] = "slerp") -> np.ndarray:
        """The point ``alpha`` of the way from row ``i``'s vector to row ``j``'s.

        ``slerp`` follows the great circle (unit vectors stay unit; other vectors get the interpolated
        norm); ``lerp`` is the straight line, renormalised when the stored vectors are normalised.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        return interpolate(self.embedding(i), self.embedding(j), alpha, method, self.normalized)

    def dataloader(self, batch_size: int = 32, shuffle: bool = False, seed: int = 0, num_workers: int = 0,
                   drop_last: bool = False) -> Any:
        """A ``torch.utils.data.DataLoader`` over this split with ``EmbeddingCollator`` (seeded shuffling)."""
        import torch
        from torch.utils.data import DataLoader

        gen = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(self, batch_size=batch_size, shuffle=shuffle, generator=gen, num_workers=num_workers,
                          drop_last=drop_last, collate_fn=EmbeddingCollator())


def interpolate(a: np.ndarray, b: np.ndarray, alpha: float, method: str = "slerp",
                normalized: bool = True) -> np.ndarray:
    """Spherical (``slerp``) or linear (``lerp``) interpolation between vectors ``a`` and ``b``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if method == "lerp":
        v = (1 - alpha) * a + alpha * b
        if normalized:
            v /= max(np.linalg.norm(v), 1e-12)
        return v.astype(np.float32)
    if method != "slerp":
        raise ValueError(f"method must be slerp or lerp, got {method!r}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    ua, ub = a / max(na, 1e-12), b / max(nb, 1e-12)
    omega = float(np.arccos(np.clip(ua @ ub, -1.0, 1.0)))
    if omega < 1e-6:  # (nearly) the same direction: the arc is a line
        u = (1 - alpha) * ua + alpha * ub
    else:
        u = (np.sin((1 - alpha) * omega) * ua + np.sin(alpha * omega) * ub) / np.sin(omega)
    u /= max(np.linalg.norm(u), 1e-12)
    scale = 1.0 if normalized else (1 - alpha) * na + alpha * nb
    return (u * scale).astype(np.float32)


class EmbeddingCollator:
    """Rows of ``EmbeddingDataset`` into a batch: ``embeddings`` (batch, dim) float32 tensor, ``token_count``
    int64 tensor, and lists ``texts``, ``text_ids``, ``metadata``."""

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        return {
            "embeddings": torch.from_numpy(np.stack([r["embedding"] for r in rows])),
            "token_count": torch.tensor([r["metadata"]["token_count"] for r in rows], dtype=torch.int64),
            "texts": [r["text"] for r in rows],
            "text_ids": [r["metadata"]["text_id"] for r in rows],
            "metadata": [r["metadata"] for r in rows],
        }
