"""Quality classification with any local Hugging Face sequence-classification model (FineWeb-Edu style)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corpusforge.curate.toxicity import Scorer, hf_scorer
from corpusforge.document import Document
from corpusforge.models.perplexity import model_window
from corpusforge.models.top_fraction import TopFraction, check_fraction
from corpusforge.registry import register
from corpusforge.step import ScoringFilter

if TYPE_CHECKING:
    pass


def regression_scorer(model_path: str, max_length: int, batch_size: int) -> Scorer:
    """A one-output (regression) head, as FineWeb-Edu's classifier: the score is the raw output."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, local_files_only=True).eval()

    def score(texts: list[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            with torch.inference_mode():
                out += model(**enc).logits[:, 0].float().tolist()
        return out

    return score


def load_scorer(model_path: str, label: str | None, max_length: int, batch_size: int) -> Scorer:
    """Regression output for a one-label model, else the probability of ``label`` (the toxicity loader)."""
    try:
        from transformers import AutoConfig
    except ImportError as e:
        raise ImportError("classifier needs transformers and torch: pip install 'corpusforge[ml]'") from e
    try:
        config = AutoConfig.from_pretrained(model_path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"classifier: cannot load a model config from {model_path}: {e}") from e
    max_length = min(max_length, model_window(config))
    if config.num_labels == 1:
        return regression_scorer(model_path, max_length, batch_size)
    if label is None:
        raise ValueError(f"classifier: model {model_path} has {config.num_labels} labels; name one with label:")
    return hf_scorer(model_path, label, max_length, batch_size)


@register("classifier")
class Classifier(TopFraction, ScoringFilter):
    """Keep documents whose classifier score is at least ``threshold``; the score goes in metadata.

    ``model_path``: a local sequence-classification folder. A one-output model (FineWeb-Edu's
    educational-value regressor, 0-5) is scored by its raw output; a multi-class model by the
    softmax probability of ``label``. ``metadata[key]`` holds the score; ``threshold: null`` or
    ``drop: false`` only annotates. Reason: ``below_threshold``. ``keep_top_fraction`` instead keeps
    the best-scoring fraction of the whole run (a corpus-wide ``KeepTopFraction`` step).
    """

    media_policy = "text"  # a media document is judged by its caption; one without text passes

    def __init__(
        self,
        model_path: str,
        threshold: float | None = None,
        label: str | None = None,
        key: str = "classifier_score",
        max_length: int = 512,
        batch_size: int = 32,
        drop: bool = True,
        keep_top_fraction: float | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        check_fraction(keep_top_fraction, threshold=threshold, drop=drop)
        self.model_path, self.threshold, self.label, self.key = model_path, threshold, label, key
        self.max_length, self.batch_size, self.drop = max_length, batch_size, drop
        self._score: Scorer | None = None

    def setup(self, ctx: object) -> None:
        if self._score is None:
            self._score = load_scorer(self.model_path, self.label, self.max_length, self.batch_size)

    def scores(self, docs: list[Document]) -> list[float]:
        """Score of each document (batched model calls)."""
        self.setup(None)
        assert self._score is not None
        return self._score([d.text for d in docs])

    def record(self, doc: Document, score: float) -> None:
        doc.metadata[self.key] = round(score, 4)

    def decide(self, doc: Document, score: float) -> str | None:
        self.record(doc, score)
        if self.drop and self.threshold is not None and score < self.threshold:
            return "below_threshold"
        return None
