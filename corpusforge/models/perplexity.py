"""Perplexity filtering with a local Hugging Face causal language model (CCNet / RedPajama style)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from corpusforge.document import Document
from corpusforge.models.arpa import BACKENDS, NGRAM_SUFFIXES, load_ngram, normalize_words
from corpusforge.models.top_fraction import TopFraction, check_fraction
from corpusforge.registry import register
from corpusforge.step import ScoringFilter

if TYPE_CHECKING:
    pass


def _device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_window(config: Any) -> int:
    """The most positions a model accepts (longer inputs would index past its position table)."""
    for name in ("max_position_embeddings", "n_positions"):
        n = getattr(config, name, None)
        if isinstance(n, int) and n > 0:
            return n
    return 1 << 30


class CausalLMScorer:
    """Per-document perplexity, exp(mean token negative log-likelihood), from a local causal LM."""

    def __init__(self, model_path: str, max_length: int, batch_size: int, device: str | None = None):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise ImportError("perplexity needs transformers and torch: pip install 'corpusforge[ml]'") from e
        self.torch = torch
        self.device = device or _device()
        try:
            self.tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
            self.model: Any = AutoModelForCausalLM.from_pretrained(
                model_path, local_files_only=True, dtype=dtype
            ).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise ValueError(f"perplexity: cannot load a causal LM from {model_path}: {e}") from e
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token or self.tok.unk_token
        self.tok.padding_side = "right"
        self.max_length, self.batch_size = min(max_length, model_window(self.model.config)), batch_size

    def __call__(self, texts: list[str]) -> list[float]:
        """Perplexity of each text; a text of fewer than two tokens scores ``inf``."""
        torch = self.torch
        out: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tok(texts[i : i + self.batch_size], truncation=True, max_length=self.max_length,
                           padding=True, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits[:, :-1].float()
            target = enc["input_ids"][:, 1:]
            mask = enc["attention_mask"][:, 1:].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            n = mask.sum(dim=1)
            mean = (nll * mask).sum(dim=1) / n.clamp(min=1)
            out += [math.exp(m) if c > 0 else math.inf for m, c in zip(mean.tolist(), n.tolist(), strict=True)]
        return out


@register("perplexity")
class Perplexity(TopFraction, ScoringFilter):
    """Drop documents whose language-model perplexity is outside [``min_perplexity``, ``max_perplexity``].

    ``model_path``: a local Hugging Face causal LM folder (config, weights, tokenizer), e.g. a GPT-2
    or a small Qwen/Llama; fp16 on GPU, fp32 on CPU. A file (``.arpa``, ``.arpa.gz``, KenLM ``.bin``)
    is an n-gram model scored per line with back-off as CCNet does, through the ``kenlm`` module or
    corpusforge's own ARPA reader (``ngram_backend``). A causal LM scores a document's first
    ``max_length`` tokens. ``metadata[key]`` holds the perplexity; ``drop: false`` only annotates.
    Reasons: ``high_perplexity`` (too surprising: noise, boilerplate soup), ``low_perplexity``
    (too predictable: repeated or templated text). ``keep_top_fraction`` instead keeps the
    lowest-perplexity fraction of the whole run (a corpus-wide ``KeepTopFraction`` step).
    """

    media_policy = "text"  # a media document is judged by its caption; one without text passes
    score_chunk = 4  # four batches per call: the n-gram scorer vectorises over it; the LM still steps by batch_size

    higher_is_better = False

    def __init__(
        self,
        model_path: str,
        max_perplexity: float | None = None,
        min_perplexity: float | None = None,
        max_length: int = 512,
        batch_size: int = 8,
        key: str = "perplexity",
        device: str | None = None,
        drop: bool = True,
        keep_top_fraction: float | None = None,
        ngram_backend: Literal["auto", "kenlm", "python"] = "auto",
        normalize: bool = False,
    ):
        if ngram_backend not in BACKENDS:
            raise ValueError(f"ngram_backend must be one of {', '.join(BACKENDS)}; got {ngram_backend!r}")
        if batch_size < 1 or max_length < 2:
            raise ValueError("batch_size must be >= 1 and max_length >= 2")
        check_fraction(keep_top_fraction, max_perplexity=max_perplexity, min_perplexity=min_perplexity, drop=drop)
        if min_perplexity is not None and max_perplexity is not None and min_perplexity > max_perplexity:
            raise ValueError("min_perplexity must be <= max_perplexity")
        self.model_path, self.max_perplexity, self.min_perplexity = model_path, max_perplexity, min_perplexity
        self.max_length, self.batch_size, self.key, self.device, self.drop = max_length, batch_size, key, device, drop
        self.ngram_backend, self.normalize = ngram_backend, normalize
        self._score: Callable[[list[str]], list[float]] | None = None

    def is_ngram(self) -> bool:
        """A file or an n-gram suffix means an ARPA/KenLM model; a causal LM is a folder."""
        path = Path(self.model_path)
        return path.is_file() or (self.model_path.endswith(NGRAM_SUFFIXES) and not path.is_dir())

    def setup(self, ctx: object) -> None:
        if self._score is None:
            if self.is_ngram():
                self._score = load_ngram(self.model_path, self.ngram_backend).perplexities
            else:
                self._score = CausalLMScorer(self.model_path, self.max_length, self.batch_size, self.device)

    def scores(self, docs: list[Document]) -> list[float]:
        """Perplexity of each document (batched model calls)."""
        self.setup(None)
        assert self._score is not None
        texts = [d.text for d in docs]
        return self._score([normalize_words(t) for t in texts] if self.normalize else texts)

    def record(self, doc: Document, ppl: float) -> None:
        doc.metadata[self.key] = round(ppl, 4) if math.isfinite(ppl) else None

    def decide(self, doc: Document, ppl: float) -> str | None:
        self.record(doc, ppl)
        if not self.drop:
            return None
        if self.max_perplexity is not None and not ppl <= self.max_perplexity:
            return "high_perplexity"
        if self.min_perplexity is not None and ppl < self.min_perplexity:
            return "low_perplexity"
        return None
