"""Toxicity scoring: a classifier shipped in its wheel, or any local HuggingFace text classifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from corpusforge.document import Document
from corpusforge.registry import register
from corpusforge.step import ScoringFilter

if TYPE_CHECKING:
    pass

Scorer = Callable[[list[str]], list[float]]


def profanity_scorer() -> Scorer:
    """alt-profanity-check: a linear SVM over TF-IDF features, trained on ~200k labelled comments."""
    try:
        from profanity_check import predict_prob
    except ImportError as e:
        raise ImportError("toxicity needs alt-profanity-check: pip install 'corpusforge[quality]'") from e

    def score(texts: list[str]) -> list[float]:
        return [float(p) for p in predict_prob(texts)]

    return score


def hf_scorer(model_path: str, label: str, max_length: int, batch_size: int) -> Scorer:
    """A local transformers sequence-classification model; the score is ``label``'s probability."""
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as e:
        raise ImportError("toxicity model_path needs transformers and torch: pip install transformers torch") from e
    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, local_files_only=True).eval()
    labels = {v: int(k) for k, v in model.config.id2label.items()}
    if label not in labels:
        raise ValueError(f"toxicity: model {model_path} has no label {label!r}; it has {sorted(labels)}")
    idx = labels[label]
    multi_label = model.config.problem_type == "multi_label_classification"

    def score(texts: list[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            with torch.inference_mode():
                logits = model(**enc).logits
            probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)
            out += probs[:, idx].tolist()
        return out

    return score


@register("toxicity")
class Toxicity(ScoringFilter):
    """Drop documents whose toxicity score is at least ``threshold``; the score goes in metadata.

    Default model: alt-profanity-check (ships in its wheel); ``threshold: 0.5`` is that library's
    own decision point. ``model_path`` instead loads a local HuggingFace text-classification model
    (folder with config, weights and tokenizer); ``label`` names its toxic class. ``unit: line``
    scores each non-empty line and takes the maximum, so one abusive line in a long page counts.
    ``metadata["toxicity"]`` holds the score; ``drop: false`` only annotates. Reason: ``toxic``.
    """

    media_policy = "text"  # a media document is judged by its caption; one without text passes

    def __init__(
        self,
        threshold: float = 0.5,
        model_path: str | None = None,
        label: str = "toxic",
        unit: Literal["document", "line"] = "document",
        max_length: int = 512,
        batch_size: int = 32,
        drop: bool = True,
    ):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.threshold, self.model_path, self.label = threshold, model_path, label
        self.unit, self.max_length, self.batch_size, self.drop = unit, max_length, batch_size, drop
        self._score: Scorer | None = None

    def setup(self, ctx: object) -> None:
        if self._score is None:
            if self.model_path is None:
                self._score = profanity_scorer()
            else:
                self._score = hf_scorer(self.model_path, self.label, self.max_length, self.batch_size)

    def scores(self, docs: list[Document]) -> list[float]:
        """Toxicity of each document (one batched model call for the whole list)."""
        self.setup(None)
        assert self._score is not None
        if self.unit == "document":
            return self._score([d.text for d in docs])
        units: list[str] = []
        owner: list[int] = []
        for i, d in enumerate(docs):
            for ln in d.lines:
                if ln.strip():
                    units.append(ln)
                    owner.append(i)
        out = [0.0] * len(docs)
        for i, s in zip(owner, self._score(units) if units else [], strict=True):
            out[i] = max(out[i], s)
        return out

    def decide(self, doc: Document, score: float) -> str | None:
        doc.metadata["toxicity"] = round(score, 4)
        return "toxic" if self.drop and score >= self.threshold else None
