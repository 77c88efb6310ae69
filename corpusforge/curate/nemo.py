"""Base of the NeMo Curator heuristic catalogue: one score per document, kept on one side of a limit.

NeMo Curator's heuristic filters each compute a score (``score_document``) and keep the document
when the score is within its bounds (``keep_document``). Here each is a ``ScoreFilter``: ``score``
measures, ``bounds`` are the reference's defaults, and the ``mode`` option of every signal filter
(``filter``, ``annotate``, ``both``) stores the score under ``metadata[<step name>]["score"]``. Words
are ``str.split()`` words and lines are the non-blank pieces between ``\\n``, as in NeMo Curator;
both come from the shared ``TextStats`` (``corpusforge/curate/textstats.py``).
"""

from __future__ import annotations

from abc import abstractmethod
from functools import lru_cache
from typing import Any, ClassVar

from corpusforge.curate.signals import Mode, SignalFilter, Verdict
from corpusforge.curate.textstats import TextStats, stats
from corpusforge.document import Document


class ScoreFilter(SignalFilter):
    """A filter on one score: drop with ``reason`` when it is below ``low`` or above ``high``.

    ``low``/``high`` of None mean no bound; a score of None (nothing to measure) keeps the document
    unless ``empty_reason`` is set.
    """

    reason: ClassVar[str] = "score"
    empty_reason: ClassVar[str | None] = None

    def __init__(self, low: float | None = None, high: float | None = None, mode: Mode = "filter"):
        super().__init__(mode)
        if low is not None and high is not None and low > high:
            raise ValueError(f"{self.name}: the minimum {low} exceeds the maximum {high}")
        self.low, self.high = low, high

    @abstractmethod
    def score(self, doc: Document) -> float | None:
        """The document's score (None when there is nothing to measure, e.g. no words)."""

    def evaluate(self, doc: Document, signals: dict[str, Any] | None) -> str | None:
        verdict = Verdict(signals)
        value = self.score(doc)
        verdict.sig["score"] = value if value is None or isinstance(value, int) else round(value, 6)
        if value is None:
            if self.empty_reason is not None:
                verdict.fail(self.empty_reason)
            return verdict.first
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            verdict.fail(self.reason)
        return verdict.first


def text_stats(doc: Document) -> TextStats:
    """The document's shared statistics (``str.split()`` words)."""
    return stats(doc)


def lf_lines(doc: Document) -> list[str]:
    """Non-blank lines split on ``\\n`` only (NeMo Curator's ``get_sentences``)."""
    return [ln for ln in doc.text.split("\n") if ln.strip()]


@lru_cache(maxsize=1)
def unicode_regex() -> Any:
    """The ``regex`` module (POSIX classes over Unicode properties); in the ``quality`` extra."""
    try:
        import regex
    except ImportError as e:  # pragma: no cover - regex is in the quality extra
        raise ImportError("this filter needs the regex module (pip install 'corpusforge[quality]')") from e
    return regex
