"""Gopher quality and repetition filters (Rae et al. 2021, "Scaling Language Models", appendix A).

Thresholds are the paper's (section A.1.1 and table A1). Words are whitespace-separated tokens
(``doc.words``), with punctuation stripped from their edges where a rule is about words. With
``compat: datatrove`` both filters decide as datatrove 0.10's ``GopherQualityFilter`` and
``GopherRepetitionFilter`` do with their defaults (spaCy words; see ``docs/curate.md``).
"""

from __future__ import annotations

import re
from operator import methodcaller
from typing import Any

import numpy as np

from corpusforge.curate.compat import PUNCTUATION as DATATROVE_PUNCTUATION
from corpusforge.curate.compat import check_compat
from corpusforge.curate.signals import Mode, SignalFilter, Verdict, ratio
from corpusforge.curate.textstats import duplicate_ngram_chars, duplicates, stats, top_ngram_chars
from corpusforge.document import Document
from corpusforge.registry import register

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
BULLETS = ("•", "-", "*", "‣", "◦", "●")
ELLIPSES = ("...", "…")
_STARTS_BULLET = methodcaller("startswith", BULLETS)
_ENDS_ELLIPSIS = methodcaller("endswith", ELLIPSES)
_LETTER = re.compile(r"[^\W\d_]")  # a word character that is not a digit or underscore: a letter
DATATROVE_BULLETS = ("•", "-")
_STARTS_DATATROVE_BULLET = methodcaller("startswith", DATATROVE_BULLETS)
_LINE_RUNS = re.compile("\n+")


@register("gopher_quality")
class GopherQuality(SignalFilter):
    """Gopher quality rules (Rae et al. 2021, appendix A.1.1), defaults from the paper.

    Keep documents with 50-100,000 words, mean word length 3-10 characters, at most 0.1 hash
    symbols and 0.1 ellipses per word, at most 90% of lines starting with a bullet and 30% ending
    with an ellipsis, at least 80% of words containing a letter, and at least two of the stop words
    the/be/to/of/and/that/have/with. Reasons: ``too_few_words``, ``too_many_words``,
    ``mean_word_length_too_short``, ``mean_word_length_too_long``, ``hash_ratio``,
    ``ellipsis_ratio``, ``bullet_lines_ratio``, ``ellipsis_lines_ratio``, ``alpha_words_ratio``,
    ``too_few_stop_words``. ``compat: datatrove``: datatrove's counting (spaCy tokens, punctuation
    tokens in the alphabetic rule, case-sensitive stop words, bullets ``•`` and ``-`` only).
    """


    def _line_rules(self, lines: list[str], starts_bullet: Any, sig: dict[str, Any], fail: Any) -> bool:
        """The bullet-lines and ellipsis-lines rules (``starts_bullet`` says what a bullet is in
        this mode); True when one fails the document."""
        bullet = ratio(sum(map(starts_bullet, map(str.lstrip, lines))), len(lines))
        sig["bullet_lines_ratio"] = round(bullet, 4)
        if bullet > self.max_bullet_lines_ratio and fail("bullet_lines_ratio"):
            return True
        ell_lines = ratio(sum(map(_ENDS_ELLIPSIS, map(str.rstrip, lines))), len(lines))
        sig["ellipsis_lines_ratio"] = round(ell_lines, 4)
        return bool(ell_lines > self.max_ellipsis_lines_ratio and fail("ellipsis_lines_ratio"))
    def __init__(
        self,
        min_words: int = 50,
        max_words: int = 100_000,
        min_mean_word_length: float = 3.0,
        max_mean_word_length: float = 10.0,
        max_symbol_word_ratio: float = 0.1,
        max_bullet_lines_ratio: float = 0.9,
        max_ellipsis_lines_ratio: float = 0.3,
        min_alpha_words_ratio: float = 0.8,
        min_stop_words: int = 2,
        stop_words: list[str] | None = None,
        compat: str | None = None,
        mode: Mode = "filter",
    ):
        super().__init__(mode)
        self.compat = check_compat(compat)
        if min_words > max_words or min_mean_word_length > max_mean_word_length:
            raise ValueError("min_* must not exceed max_*")
        self.min_words, self.max_words = min_words, max_words
        self.min_mean_word_length, self.max_mean_word_length = min_mean_word_length, max_mean_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.min_stop_words = min_stop_words
        words = STOP_WORDS if stop_words is None else stop_words
        # datatrove matches stop words case-sensitively; the paper's rule is about words, any case.
        self.stop_words = frozenset(words if self.compat else (w.lower() for w in words))

    def evaluate(self, doc: Document, signals: dict[str, Any] | None) -> str | None:
        if self.compat:
            return self._evaluate_datatrove(doc, Verdict(signals))
        ts = stats(doc)
        text = doc.text
        verdict = Verdict(signals)
        sig, fail = verdict.sig, verdict.fail

        # Per-word rules run once per distinct word, weighted by its count. Stripped of edge
        # punctuation; punctuation-only tokens are not words.
        stripped, counts = ts.stripped_distinct, ts.word_counts
        lengths = np.fromiter(map(len, stripped), dtype=np.int64, count=len(stripped))
        is_word = lengths > 0
        n = int(counts[is_word].sum())
        sig["words"] = n
        if n < self.min_words and fail("too_few_words"):
            return verdict.first
        if n > self.max_words and fail("too_many_words"):
            return verdict.first
        mean_len = ratio(int(lengths @ counts), n)
        sig["mean_word_length"] = round(mean_len, 4)
        if mean_len < self.min_mean_word_length and fail("mean_word_length_too_short"):
            return verdict.first
        if mean_len > self.max_mean_word_length and fail("mean_word_length_too_long"):
            return verdict.first
        n_tokens = ts.n_words
        hash_ratio = ratio(text.count("#"), n_tokens)
        sig["hash_ratio"] = round(hash_ratio, 4)
        if hash_ratio > self.max_symbol_word_ratio and fail("hash_ratio"):
            return verdict.first
        ellipsis_ratio = ratio(text.count("...") + text.count("…"), n_tokens)
        sig["ellipsis_ratio"] = round(ellipsis_ratio, 4)
        if ellipsis_ratio > self.max_symbol_word_ratio and fail("ellipsis_ratio"):
            return verdict.first
        if self._line_rules(ts.lines, _STARTS_BULLET, sig, fail):
            return verdict.first
        # Over words (punctuation-only tokens are not words): "1999" or "$5" has no letter. Words
        # made of letters only are settled by one C-level pass; only the others are inspected.
        has_letter = np.fromiter(map(str.isalpha, stripped), dtype=bool, count=len(stripped))
        for i in np.flatnonzero(~has_letter & is_word).tolist():
            has_letter[i] = _LETTER.search(stripped[i]) is not None
        with_alpha = int(counts[has_letter].sum())
        alpha = ratio(with_alpha, n)
        sig["alpha_words_ratio"] = round(alpha, 4)
        if alpha < self.min_alpha_words_ratio and fail("alpha_words_ratio"):
            return verdict.first
        stop = self.stop_words
        # "at least two of the following words": distinct stop words, as datatrove counts them too.
        n_stop = len(stop.intersection(ts.lower_vocabulary()))
        sig["stop_words"] = n_stop
        if n_stop < self.min_stop_words and fail("too_few_stop_words"):
            return verdict.first
        return verdict.first

    def _evaluate_datatrove(self, doc: Document, verdict: Verdict) -> str | None:
        """datatrove 0.10's rules: "words" are its spaCy tokens without punctuation-only ones, but the
        hash, ellipsis and alphabetic ratios divide by every token, punctuation included."""
        ts = stats(doc, "datatrove")
        text = doc.text
        sig, fail = verdict.sig, verdict.fail
        distinct, counts = ts.distinct_words, ts.word_counts
        punct = DATATROVE_PUNCTUATION
        is_word = np.fromiter((not punct.issuperset(w) for w in distinct), dtype=bool, count=len(distinct))
        lengths = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
        n = int(counts[is_word].sum())
        n_tokens = ts.n_words
        sig["words"], sig["tokens"] = n, n_tokens
        if n < self.min_words and fail("too_few_words"):
            return verdict.first
        if n > self.max_words and fail("too_many_words"):
            return verdict.first
        mean_len = ratio(int(lengths[is_word] @ counts[is_word]), n)
        sig["mean_word_length"] = round(mean_len, 4)
        if n and mean_len < self.min_mean_word_length and fail("mean_word_length_too_short"):
            return verdict.first
        if n and mean_len > self.max_mean_word_length and fail("mean_word_length_too_long"):
            return verdict.first
        for key, count in (("hash_ratio", text.count("#")), ("ellipsis_ratio", text.count("...") + text.count("…"))):
            value = ratio(count, n_tokens)
            sig[key] = round(value, 4)
            if value > self.max_symbol_word_ratio and fail(key):
                return verdict.first
        if self._line_rules(ts.lines, _STARTS_DATATROVE_BULLET, sig, fail):
            return verdict.first
        has_alpha = np.fromiter((any(map(str.isalpha, w)) for w in distinct), dtype=bool, count=len(distinct))
        alpha = ratio(int(counts[has_alpha].sum()), n_tokens)
        sig["alpha_words_ratio"] = round(alpha, 4)
        if alpha < self.min_alpha_words_ratio and fail("alpha_words_ratio"):
            return verdict.first
        n_stop = len(self.stop_words.intersection(distinct))
        sig["stop_words"] = n_stop
        if n_stop < self.min_stop_words and fail("too_few_stop_words"):
            return verdict.first
        return verdict.first


_TOP_NGRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
_DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


@register("gopher_repetition")
class GopherRepetition(SignalFilter):
    """Gopher repetition rules (Rae et al. 2021, table A1), defaults from the paper.

    Drop documents where duplicate lines are more than 30% of lines or 20% of characters,
    duplicate paragraphs more than 30% of paragraphs or 20% of characters, the most frequent
    2/3/4-gram covers more than 20/18/16% of characters, or repeated 5..10-grams cover more than
    15/14/13/12/11/10% of characters. Reasons: ``dup_para_frac``, ``dup_para_char_frac``,
    ``dup_line_frac``, ``dup_line_char_frac``, ``top_{n}_gram``, ``duplicated_{n}_grams``.
    ``compat: datatrove``: n-grams over spaCy tokens, lines split on runs of ``\n`` (blank lines
    at the ends count), and an empty text fails with ``empty``.
    """

    def __init__(
        self,
        dup_line_frac: float = 0.3,
        dup_para_frac: float = 0.3,
        dup_line_char_frac: float = 0.2,
        dup_para_char_frac: float = 0.2,
        top_ngram_char_frac: dict[int, float] | None = None,
        dup_ngram_char_frac: dict[int, float] | None = None,
        compat: str | None = None,
        mode: Mode = "filter",
    ):
        super().__init__(mode)
        self.compat = check_compat(compat)
        self.dup_line_frac, self.dup_para_frac = dup_line_frac, dup_para_frac
        self.dup_line_char_frac, self.dup_para_char_frac = dup_line_char_frac, dup_para_char_frac
        self.top_ngrams = dict(sorted((_TOP_NGRAMS if top_ngram_char_frac is None else top_ngram_char_frac).items()))
        self.dup_ngrams = dict(sorted((_DUP_NGRAMS if dup_ngram_char_frac is None else dup_ngram_char_frac).items()))
        if any(n < 1 for n in (*self.top_ngrams, *self.dup_ngrams)):
            raise ValueError("n-gram sizes must be >= 1")

    def evaluate(self, doc: Document, signals: dict[str, Any] | None) -> str | None:
        n_chars = len(doc.text)
        verdict = Verdict(signals)
        sig, fail = verdict.sig, verdict.fail
        if self.compat:
            if not n_chars:
                return "empty"
            ts = stats(doc, "datatrove")
            lines = _LINE_RUNS.split(doc.text)
        else:
            ts = stats(doc)
            lines = ts.nonempty_lines

        units = (
            ("para", ts.paragraphs, self.dup_para_frac, self.dup_para_char_frac),
            ("line", lines, self.dup_line_frac, self.dup_line_char_frac),
        )
        for unit, items, frac_limit, char_limit in units:
            n_dup, dup_chars = duplicates(items)
            for key, value, limit in (
                (f"dup_{unit}_frac", ratio(n_dup, len(items)), frac_limit),
                (f"dup_{unit}_char_frac", ratio(dup_chars, n_chars), char_limit),
            ):
                sig[key] = round(value, 4)
                if value > limit and fail(key):
                    return verdict.first
        for n, limit in self.top_ngrams.items():
            frac = ratio(top_ngram_chars(ts, n), n_chars)
            sig[f"top_{n}_gram_char_frac"] = round(frac, 4)
            if frac > limit and fail(f"top_{n}_gram"):
                return verdict.first
        for n, limit in self.dup_ngrams.items():
            frac = ratio(duplicate_ngram_chars(ts, n), n_chars)
            sig[f"duplicated_{n}_grams_char_frac"] = round(frac, 4)
            if frac > limit and fail(f"duplicated_{n}_grams"):
                return verdict.first
        return verdict.first
