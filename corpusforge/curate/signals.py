"""Base for filters that measure signals: drop on them, keep them in metadata, or both."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Literal

from corpusforge.document import Document
from corpusforge.step import Filter

if TYPE_CHECKING:
    pass

Mode = Literal["filter", "annotate", "both"]


class Verdict:
    """The first failed criterion of one evaluation, and whether to stop at it.

    ``fail(reason)`` records the reason if it is the first and returns True when evaluation should
    stop there (filter-only mode, ``signals is None``); with signals every criterion is measured.
    """

    def __init__(self, signals: dict[str, Any] | None):
        self.first: str | None = None
        self.stop = signals is None
        self.sig: dict[str, Any] = signals if signals is not None else {}

    def fail(self, reason: str) -> bool:
        if self.first is None:
            self.first = reason
        return self.stop


class SignalFilter(Filter):
    """A filter whose measurements can be stored in ``doc.metadata[<step name>]``.

    ``mode="filter"`` drops documents that fail (stopping at the first failed criterion);
    ``"annotate"`` keeps every document and stores the measured signals plus ``"reason"`` (the
    criterion that would fail, or None); ``"both"`` stores them and drops.
    """

    def __init__(self, mode: Mode = "filter"):
        if mode not in ("filter", "annotate", "both"):
            raise ValueError(f"mode must be filter, annotate or both, not {mode!r}")
        self.mode = mode
        self.annotate = mode != "filter"
        self.drops = mode != "annotate"

    @abstractmethod
    def evaluate(self, doc: Document, signals: dict[str, Any] | None) -> str | None:
        """The first failed criterion or None. If ``signals`` is a dict, measure every signal into it
        (no early exit); if None, return as soon as a criterion fails."""

    def keep(self, doc: Document) -> str | None:
        if not self.annotate:
            return self.evaluate(doc, None)
        signals: dict[str, Any] = {}
        reason = self.evaluate(doc, signals)
        signals["reason"] = reason
        doc.metadata[self.name] = signals
        return reason if self.drops else None


def ratio(num: float, den: float) -> float:
    """num / den, 0 when den is 0 (an empty document has no repeated or special anything)."""
    return num / den if den else 0.0
