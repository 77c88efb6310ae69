"""VQ codebooks: k-means centroids over feature vectors, saved as SafeTensors plus a JSON config."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.errors import CorruptInput
from corpusforge.state import atomic_write_bytes, atomic_write_json

MODALITIES = ("image", "audio", "video")
WEIGHTS, CONFIG = "codebook.safetensors", "codebook.json"


def kmeans_plus_plus(x: np.ndarray, k: int, seed: int, sample: int = 20_000) -> np.ndarray:
    """k-means++ seeds (on a sample of at most ``sample`` rows): spread-out starts that random
    picks miss, so well-separated clusters each get their own code."""
    rng = np.random.default_rng(seed)
    if len(x) > sample:
        x = x[rng.choice(len(x), sample, replace=False)]
    seeds = [x[rng.integers(len(x))]]
    d2 = ((x - seeds[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = float(d2.sum())
        i = int(rng.choice(len(x), p=d2 / total)) if total > 0 else int(rng.integers(len(x)))
        seeds.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(axis=1))
    return np.ascontiguousarray(np.stack(seeds), dtype=np.float32)


@dataclass
class Codebook:
    """``centroids`` (size, dim) float32 for one modality; ``config`` records how its features are cut."""

    modality: str
    centroids: np.ndarray
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])

    @classmethod
    def train(cls, modality: str, vectors: np.ndarray, size: int, seed: int = 0, iterations: int = 20,
              config: dict[str, Any] | None = None) -> Codebook:
        """k-means (faiss) with ``size`` centroids over ``vectors`` (n, dim); needs n >= size."""
        import faiss

        if modality not in MODALITIES:
            raise ValueError(f"modality {modality!r} is unknown; allowed: {', '.join(MODALITIES)}")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(x) < size:
            raise ValueError(f"{len(x)} training vectors cannot make a codebook of {size} codes")
        # min_points_per_centroid only sets when faiss warns on stderr; small corpora are expected here.
        km = faiss.Kmeans(x.shape[1], size, niter=iterations, seed=seed, verbose=False, min_points_per_centroid=1,
                          max_points_per_centroid=max(256, -(-len(x) // size)))
        km.train(x, init_centroids=kmeans_plus_plus(x, size, seed))
        return cls(modality, km.centroids.astype(np.float32), dict(config or {}))

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """The index of the nearest centroid (L2) of every row, as int32."""
        import faiss

        index = faiss.IndexFlatL2(self.centroids.shape[1])
        index.add(self.centroids)
        _, codes = index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
        return codes[:, 0].astype(np.int32)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The centroids the codes name: the reconstruction of the encoded vectors."""
        return self.centroids[np.asarray(codes)]

    def reconstruction(self, vectors: np.ndarray, peak: float = 1.0) -> dict[str, float]:
        """Mean squared error of encode-then-decode and its PSNR in dB against ``peak``."""
        x = np.asarray(vectors, dtype=np.float32)
        mse = float(np.mean((self.decode(self.encode(x)) - x) ** 2))
        psnr = float("inf") if mse == 0 else float(10 * np.log10(peak * peak / mse))
        return {"mse": mse, "psnr_db": psnr}

    def save(self, folder: str | Path) -> Path:
        """Write ``codebook.safetensors`` and ``codebook.json`` into ``folder`` atomically."""
        from safetensors.numpy import save

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / WEIGHTS, save({"centroids": self.centroids}))
        atomic_write_json(out / CONFIG, {"modality": self.modality, "size": self.size,
                                         "dim": int(self.centroids.shape[1]), **self.config})
        return out

    @classmethod
    def load(cls, folder: str | Path) -> Codebook:
        """Read a codebook folder written by ``save``; a missing or mismatched file is a clear error."""
        from safetensors.numpy import load_file

        f = Path(folder)
        try:
            cfg = json.loads((f / CONFIG).read_text())
            centroids = load_file(str(f / WEIGHTS))["centroids"]
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptInput(str(f), f"not a codebook folder ({CONFIG} + {WEIGHTS}): {exc}") from exc
        if list(centroids.shape) != [cfg.get("size"), cfg.get("dim")]:
            raise CorruptInput(str(f), f"centroids are {list(centroids.shape)} but {CONFIG} says "
                               f"size {cfg.get('size')}, dim {cfg.get('dim')}")
        modality = cfg.pop("modality")
        cfg.pop("size"), cfg.pop("dim")
        return cls(modality, centroids.astype(np.float32), cfg)
