"""The seed's quality thresholds: length, word count, unique-word ratio, special characters."""

from __future__ import annotations

import re

from corpusforge.document import Document
from corpusforge.registry import register
from corpusforge.step import Filter

# "Special" = neither a letter/digit (in any script) nor whitespace nor common punctuation.
_SPECIAL = re.compile(r"[^\w\s.,;:!?'\"()\-]", re.UNICODE)


@register("quality_thresholds")
class QualityThresholds(Filter):
    """Drop documents outside the seed thresholds.

    Defaults are the seed's: 50-100,000 characters, 10-50,000 words, more than 10% unique words
    (lower-cased), less than 30% special characters (not word characters, whitespace or common
    punctuation). Each failure returns its own reason.
    """

    def __init__(
        self,
        min_chars: int = 50,
        max_chars: int = 100_000,
        min_words: int = 10,
        max_words: int = 50_000,
        min_unique_word_ratio: float = 0.1,
        max_special_char_ratio: float = 0.3,
    ):
        if min_chars > max_chars or min_words > max_words:
            raise ValueError("min_* must not exceed max_*")
        self.min_chars, self.max_chars = min_chars, max_chars
        self.min_words, self.max_words = min_words, max_words
        self.min_unique_word_ratio = min_unique_word_ratio
        self.max_special_char_ratio = max_special_char_ratio

    def keep(self, doc: Document) -> str | None:
        n = len(doc.text)
        if n < self.min_chars:
            return "too_short"
        if n > self.max_chars:
            return "too_long"
        words = doc.words
        if len(words) < self.min_words:
            return "too_few_words"
        if len(words) > self.max_words:
            return "too_many_words"
        if len({w.lower() for w in words}) / len(words) <= self.min_unique_word_ratio:
            return "low_unique_word_ratio"
        if len(_SPECIAL.findall(doc.text)) / n >= self.max_special_char_ratio:
            return "too_many_special_chars"
        return None
