"""NeMo Curator's repetition filters: repeated lines and paragraphs, top and duplicate n-grams.

Defaults are NeMo Curator 1.4's (``heuristic.repetition``). Lines are the non-blank ``\\n`` lines,
paragraphs the pieces between ``\\n\\n``, words ``str.split()`` words; n-grams come from the shared
``TextStats`` hashes (``gopher_repetition`` is the Gopher paper's version of the same ideas).
"""

from __future__ import annotations

from corpusforge.curate.nemo import ScoreFilter, lf_lines, text_stats
from corpusforge.curate.signals import Mode
from corpusforge.curate.textstats import repeated_ngram_run_chars, top_ngram
from corpusforge.document import Document
from corpusforge.registry import register


def _unique_share(items: list[str]) -> float | None:
    return len(set(items)) / len(items) if items else None


def _unique_char_share(items: list[str]) -> float | None:
    total = sum(map(len, items))
    return sum(map(len, set(items))) / total if total else None


@register("repeated_lines")
class RepeatedLines(ScoreFilter):
    """Drop unless distinct lines are at least 70% of the lines."""

    reason = "repeated_lines"
    empty_reason = "empty"

    def __init__(self, max_repeated_line_fraction: float = 0.7, mode: Mode = "filter"):
        super().__init__(low=max_repeated_line_fraction, mode=mode)

    def score(self, doc: Document) -> float | None:
        return _unique_share(lf_lines(doc))


@register("repeated_paragraphs")
class RepeatedParagraphs(ScoreFilter):
    """Drop unless distinct paragraphs are at least 70% of the paragraphs."""

    reason = "repeated_paragraphs"
    empty_reason = "empty"

    def __init__(self, max_repeated_paragraphs_ratio: float = 0.7, mode: Mode = "filter"):
        super().__init__(low=max_repeated_paragraphs_ratio, mode=mode)

    def score(self, doc: Document) -> float | None:
        return _unique_share(doc.text.split("\n\n"))


@register("repeated_lines_by_char")
class RepeatedLinesByChar(ScoreFilter):
    """Drop unless distinct lines hold at least 80% of the lines' characters."""

    reason = "repeated_lines_char"
    empty_reason = "empty"

    def __init__(self, max_repeated_lines_char_ratio: float = 0.8, mode: Mode = "filter"):
        super().__init__(low=max_repeated_lines_char_ratio, mode=mode)

    def score(self, doc: Document) -> float | None:
        return _unique_char_share(lf_lines(doc))


@register("repeated_paragraphs_by_char")
class RepeatedParagraphsByChar(ScoreFilter):
    """Drop unless distinct paragraphs hold at least 80% of the paragraphs' characters."""

    reason = "repeated_paragraphs_char"
    empty_reason = "empty"

    def __init__(self, max_repeated_paragraphs_char_ratio: float = 0.8, mode: Mode = "filter"):
        super().__init__(low=max_repeated_paragraphs_char_ratio, mode=mode)

    def score(self, doc: Document) -> float | None:
        return _unique_char_share(doc.text.split("\n\n"))


def _check_n(n: int) -> int:
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    return n


@register("repeating_top_ngrams")
class RepeatingTopNGrams(ScoreFilter):
    """Drop when the most frequent word n-gram (default 2-gram) covers more than 20% of the characters.

    Coverage is the n-gram's space-joined string times its non-overlapping occurrences in the text,
    as NeMo Curator measures it; ties go to the n-gram seen first (NeMo Curator's pick among ties
    depends on set order). A text with fewer than ``n`` words scores 1.0.
    """

    reason = "repeating_top_ngrams"

    def __init__(self, n: int = 2, max_repeating_ngram_ratio: float = 0.2, mode: Mode = "filter"):
        super().__init__(high=max_repeating_ngram_ratio, mode=mode)
        self.n = _check_n(n)

    def score(self, doc: Document) -> float:
        ts = text_stats(doc)
        top = top_ngram(ts, self.n)
        text = doc.text
        if top is None or not text:
            return 1.0
        gram = " ".join(ts.words[top[0] : top[0] + self.n])
        return text.count(gram) * len(gram) / len(text)


@register("repeating_duplicate_ngrams")
class RepeatingDuplicateNGrams(ScoreFilter):
    """Drop when word n-grams (default 2-grams) that repeat an earlier one cover more than 20% of the
    characters (each word counted once, with the spaces inside runs of overlapping repeats).
    A text with fewer than ``n`` words scores 1.0."""

    reason = "repeating_duplicate_ngrams"

    def __init__(self, n: int = 2, max_repeating_duplicate_ngram_ratio: float = 0.2, mode: Mode = "filter"):
        super().__init__(high=max_repeating_duplicate_ngram_ratio, mode=mode)
        self.n = _check_n(n)

    def score(self, doc: Document) -> float:
        ts = text_stats(doc)
        if ts.n_words < self.n or not doc.text:
            return 1.0
        return repeated_ngram_run_chars(ts, self.n) / len(doc.text)
