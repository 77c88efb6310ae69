"""Optional learned media encoders: one pooled embedding per image or audio item from a local
``transformers`` model (CLIP/ViT/SigLIP vision towers, Wav2Vec2/HuBERT/Whisper encoders), written
beside the shards as SafeTensors rows aligned with a Parquet table of media ids.

Needs ``pip install 'corpusforge[ml]'``; models load from a folder only (never the hub). The
embedding is the model's ``pooler_output`` when it has one, else the mean of its last hidden state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.errors import RecipeError
from corpusforge.layout import OutputLayout
from corpusforge.media import decode


class LearnedEncoder:
    """A local vision or audio model giving one float32 vector per media item."""

    def __init__(self, modality: str, path: str, sample_rate: int = 16_000):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            import transformers
        except ImportError:
            raise ImportError("media.encoders needs torch and transformers: pip install 'corpusforge[ml]'") from None
        if not Path(path).is_dir():
            raise RecipeError(f"media.encoders.{modality}: {path!r} is not a local model folder")
        self.modality, self.path, self.rate, self.torch = modality, path, sample_rate, torch
        auto = transformers.AutoImageProcessor if modality == "image" else transformers.AutoFeatureExtractor
        try:
            self.processor = auto.from_pretrained(path, local_files_only=True)
            model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise RecipeError(f"media.encoders.{modality}: cannot load {path!r}: {exc}") from None
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()  # Whisper: the audio encoder alone
        self.model = model.eval()

    def embed(self, source: decode.Source) -> np.ndarray:
        """The (dim,) embedding of one image or audio file (a path or a stream)."""
        if self.modality == "image":
            inputs = self.processor(images=[decode.decode_image(source)[0]], return_tensors="pt")
        else:
            wave = decode.decode_audio(source, self.rate)
            inputs = self.processor(wave, sampling_rate=self.rate, return_tensors="pt")
        with self.torch.inference_mode():
            out = self.model(**inputs)
        pooled = getattr(out, "pooler_output", None)
        vec = pooled if pooled is not None else out.last_hidden_state.mean(dim=1)
        return vec[0].float().numpy()


class EmbeddingRows:
    """One task's embeddings of one modality and the ids of the media they belong to."""

    def __init__(self, modality: str, model: str):
        self.modality, self.model = modality, model
        self.vectors: list[np.ndarray] = []
        self.ids: dict[str, list[Any]] = {"document_id": [], "item": [], "uri": [], "hash": []}

    def add(self, vector: np.ndarray, doc_id: str, k: int, item: dict[str, Any]) -> None:
        self.vectors.append(vector)
        for key, value in (("document_id", doc_id), ("item", k), ("uri", item.get("uri", "")),
                           ("hash", item.get("hash", ""))):
            self.ids[key].append(value)

    def write(self, output: Path, task: int) -> dict[str, Any]:
        """``embeddings/<modality>/part_<task>.safetensors`` (``embeddings``: (n, dim) float32) and
        ``.parquet`` (row i describes embedding i), both atomically; their relative paths."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from safetensors.numpy import save

        from corpusforge.state import atomic_path, atomic_write_bytes

        lay = OutputLayout(output)
        lay.media_embeddings(self.modality).mkdir(parents=True, exist_ok=True)
        vectors = lay.media_embeddings_part(self.modality, task, ".safetensors")
        ids = lay.media_embeddings_part(self.modality, task, ".parquet")
        matrix = np.stack(self.vectors).astype(np.float32)
        atomic_write_bytes(vectors, save({"embeddings": matrix}, {"model": self.model}))
        with atomic_path(ids) as tmp:
            pq.write_table(pa.table(self.ids), tmp)
        return {"embeddings": lay.rel(vectors), "ids": lay.rel(ids), "rows": len(matrix),
                "dim": int(matrix.shape[1])}
