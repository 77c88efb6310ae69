"""NeMo Curator's ``heuristic`` string filters, one registered step each, with its defaults.

Defaults are NeMo Curator 1.4's (``nemo_curator.stages.text.filters.heuristic``), which take them
from Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020). Ratios over characters score an empty
document 1.0, as NeMo Curator does; filters over words or lines drop an empty document as ``empty``
(NeMo Curator divides by zero there).
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

import numpy as np

from corpusforge.curate.nemo import ScoreFilter, lf_lines, text_stats, unicode_regex
from corpusforge.curate.signals import Mode
from corpusforge.curate.textstats import code_points
from corpusforge.document import Document
from corpusforge.registry import register

END_MARKS = (".", "?", "!", '"', "'")
ELLIPSIS_MARKS = frozenset({"...", "[...]", "…", "(...)", "[…]", "-»", "read more..", "read more"})
BULLETS = ("•", "‣", "⁃", "⁌", "⁍", "∙", "○", "●", "◘", "◦", "⦾", "⦿")
COMMON_ENGLISH_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
WHITE_SPACE = "\t\n\r\b "
PARENTHESES = "{}⟨⟩[]()"
# C4's policy phrases plus the cookie banners NeMo Curator adds (matched in lower-cased paragraphs).
POLICY_SUBSTRINGS = (
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "privacy overview", "use of cookies",
    "use cookies", "privacy & cookies policy", "privacy and cookies policy",
    "this website uses cookies to improve your experience while you navigate through the website. out of these"
    " cookies, the cookies that are categorized as necessary are stored on your browser as they are essential for"
    " the working of basic functionalities of the website. we also use third-party cookies that help us analyze and"
    " understand how you use this website. these cookies will be stored in your browser only with your consent. you"
    " also have the option to opt-out of these cookies. but opting out of some of these cookies may have an effect"
    " on your browsing experience.",
    "necessary cookies are absolutely essential for the website to function properly. this category only includes"
    " cookies that ensures basic functionalities and security features of the website. these cookies do not store"
    " any personal information.",
    "any cookies that may not be particularly necessary for the website to function and is used specifically to"
    " collect user personal data via analytics, ads, other embedded contents are termed as non-necessary cookies."
    " it is mandatory to procure user consent prior to running these cookies on your website.",
    "this site uses cookies, including for analytics, personalization, and advertising purposes. for more"
    " information or to change your cookie settings, click here.",
    "if you continue to browse this site without changing your cookie settings, you agree to this use. acceptread more",
)
# An http(s) URL: URL characters or %XX escapes after the scheme.
URL = re.compile(r"https?://(?:[A-Za-z0-9$\-_@.&+/:=?#~]|[!*(),]|%[0-9A-Fa-f]{2})+")
_HASH_RUN = re.compile("#+")
# ASCII letters, digits, newline and ? ! , . count as alphanumeric for non_alpha_numeric.
_ALNUM_TABLE = np.zeros(256, dtype=bool)
for _c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n?!,.":
    _ALNUM_TABLE[ord(_c)] = True


def _count_ascii(text: str, table: np.ndarray) -> int:
    units = code_points(text)
    if units.dtype != np.uint8:
        units = units[units < 256]
    return int(np.count_nonzero(table[units]))


def _char_ratio(count: int, text: str) -> float:
    return count / len(text) if text else 1.0


@register("non_alpha_numeric")
class NonAlphaNumeric(ScoreFilter):
    """Drop when more than 25% of characters are not ASCII letters, digits, newline or ``? ! , .``."""

    reason = "alpha_numeric"

    def __init__(self, max_non_alpha_numeric_to_text_ratio: float = 0.25, mode: Mode = "filter"):
        super().__init__(high=max_non_alpha_numeric_to_text_ratio, mode=mode)

    def score(self, doc: Document) -> float:
        text = doc.text
        return (len(text) - _count_ascii(text, _ALNUM_TABLE)) / len(text) if text else 1.0


_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[ord("0") : ord("9") + 1] = True
_WHITE = np.zeros(256, dtype=bool)
_WHITE[[ord(c) for c in WHITE_SPACE]] = True


@register("numbers")
class Numbers(ScoreFilter):
    """Drop when more than 15% of characters are ASCII digits."""

    reason = "numbers_ratio"

    def __init__(self, max_number_to_text_ratio: float = 0.15, mode: Mode = "filter"):
        super().__init__(high=max_number_to_text_ratio, mode=mode)

    def score(self, doc: Document) -> float:
        return _char_ratio(_count_ascii(doc.text, _DIGITS), doc.text)


@register("white_space")
class WhiteSpace(ScoreFilter):
    """Drop when more than 25% of characters are tab, newline, carriage return, backspace or space."""

    reason = "white_space"

    def __init__(self, max_white_space_ratio: float = 0.25, mode: Mode = "filter"):
        super().__init__(high=max_white_space_ratio, mode=mode)

    def score(self, doc: Document) -> float:
        return _char_ratio(_count_ascii(doc.text, _WHITE), doc.text)


@register("parentheses")
class Parentheses(ScoreFilter):
    """Drop when more than 10% of characters are brackets ``{ } ⟨ ⟩ [ ] ( )``."""

    reason = "parentheses_ratio"

    def __init__(self, max_parentheses_ratio: float = 0.1, mode: Mode = "filter"):
        super().__init__(high=max_parentheses_ratio, mode=mode)

    def score(self, doc: Document) -> float:
        text = doc.text
        return _char_ratio(sum(map(text.count, PARENTHESES)), text)


def _url_regex(pattern: str | None) -> re.Pattern[str]:
    try:
        return URL if pattern is None else re.compile(pattern)
    except re.error as e:
        raise ValueError(f"url_regex {pattern!r}: {e}") from e


@register("urls")
class Urls(ScoreFilter):
    """Drop when URLs make up more than 20% of the characters; ``url_regex`` overrides what a URL is."""

    reason = "urls_ratio"

    def __init__(self, max_url_to_text_ratio: float = 0.2, url_regex: str | None = None, mode: Mode = "filter"):
        super().__init__(high=max_url_to_text_ratio, mode=mode)
        self.url_regex = _url_regex(url_regex)

    def score(self, doc: Document) -> float:
        return _char_ratio(sum(len(m.group()) for m in self.url_regex.finditer(doc.text)), doc.text)


@register("pornographic_urls")
class PornographicUrls(ScoreFilter):
    """Drop when any URL in the text contains ``porn``."""

    reason = "pornographic_url"

    def __init__(self, url_regex: str | None = None, mode: Mode = "filter"):
        super().__init__(high=0, mode=mode)
        self.url_regex = _url_regex(url_regex)

    def score(self, doc: Document) -> int:
        return int(any("porn" in m.group() for m in self.url_regex.finditer(doc.text)))


@register("word_count")
class WordCount(ScoreFilter):
    """Drop documents with fewer than 50 or more than 100,000 words."""

    reason = "word_count"

    def __init__(self, min_words: int = 50, max_words: int = 100_000, mode: Mode = "filter"):
        super().__init__(low=min_words, high=max_words, mode=mode)

    def score(self, doc: Document) -> int:
        return text_stats(doc).n_words


@register("mean_word_length")
class MeanWordLength(ScoreFilter):
    """Drop when the mean word length is outside 3-10 characters."""

    reason = "mean_word_length"
    empty_reason = "empty"

    def __init__(self, min_mean_word_length: float = 3, max_mean_word_length: float = 10, mode: Mode = "filter"):
        super().__init__(low=min_mean_word_length, high=max_mean_word_length, mode=mode)

    def score(self, doc: Document) -> float | None:
        lengths = text_stats(doc).word_len
        return float(lengths.mean()) if len(lengths) else None


@register("long_word")
class LongWord(ScoreFilter):
    """Drop documents with a word longer than 1000 characters (minified code, base64 blobs)."""

    reason = "max_word_length"
    empty_reason = "empty"

    def __init__(self, max_word_length: int = 1000, mode: Mode = "filter"):
        super().__init__(high=max_word_length, mode=mode)

    def score(self, doc: Document) -> int | None:
        lengths = text_stats(doc).word_len
        return int(lengths.max()) if len(lengths) else None


@register("symbols_to_words")
class SymbolsToWords(ScoreFilter):
    """Drop when more than 10% of words are symbols: an ellipsis (``...``, ``…``, ``[...]``, ...) or a
    word whose runs of ``#`` outnumber half its characters (``#``, ``#a#``)."""

    reason = "symbol_to_word"
    empty_reason = "empty"

    def __init__(self, max_symbol_to_word_ratio: float = 0.1, mode: Mode = "filter"):
        super().__init__(high=max_symbol_to_word_ratio, mode=mode)

    def score(self, doc: Document) -> float | None:
        ts = text_stats(doc)
        if not ts.n_words:
            return None
        symbol = [w in ELLIPSIS_MARKS or ("#" in w and len(_HASH_RUN.findall(w)) / len(w) > 0.5) for w in ts.distinct_words]
        return int(ts.word_counts[np.array(symbol, dtype=bool)].sum()) / ts.n_words


@register("common_english_words")
class CommonEnglishWords(ScoreFilter):
    """Drop documents with fewer than 2 occurrences of the/be/to/of/and/that/have/with (lower case
    exactly, so shouting in capitals does not count)."""

    reason = "common_english_words"

    def __init__(self, min_num_common_words: int = 2, mode: Mode = "filter"):
        super().__init__(low=min_num_common_words, mode=mode)

    def score(self, doc: Document) -> int:
        ts = text_stats(doc)
        hit = np.fromiter((w in COMMON_ENGLISH_WORDS for w in ts.distinct_words), dtype=bool, count=len(ts.distinct_words))
        return int(ts.word_counts[hit].sum())


@register("words_without_alphabets")
class WordsWithoutAlphabets(ScoreFilter):
    """Drop unless at least 80% of words contain an alphabetic character (Unicode Alphabetic)."""

    reason = "words_without_alphabets"
    empty_reason = "empty"

    def __init__(self, min_words_with_alphabets: float = 0.8, mode: Mode = "filter"):
        super().__init__(low=min_words_with_alphabets, mode=mode)
        self._alpha = unicode_regex().compile("[[:alpha:]]")

    def score(self, doc: Document) -> float | None:
        ts = text_stats(doc)
        if not ts.n_words:
            return None
        search = self._alpha.search
        has = np.fromiter((w.isalpha() or search(w) is not None for w in ts.distinct_words), dtype=bool)
        return int(ts.word_counts[has].sum()) / ts.n_words


class _LineFilter(ScoreFilter):
    """A ratio over the non-blank ``\\n`` lines; a document without one is dropped as ``empty``."""

    empty_reason = "empty"

    def line_ok(self, line: str) -> bool:
        """Whether ``line`` counts toward the ratio; every line filter defines it."""
        raise NotImplementedError(f"{type(self).__name__} defines no line_ok")

    def score(self, doc: Document) -> float | None:
        lines = lf_lines(doc)
        return sum(map(self.line_ok, lines)) / len(lines) if lines else None


@register("bullets")
class Bullets(_LineFilter):
    """Drop when more than 90% of lines start with a bullet (• ‣ ⁃ ⁌ ⁍ ∙ ○ ● ◘ ◦ ⦾ ⦿)."""

    reason = "bullet_ratio"

    def __init__(self, max_bullet_lines_ratio: float = 0.9, mode: Mode = "filter"):
        super().__init__(high=max_bullet_lines_ratio, mode=mode)

    def line_ok(self, line: str) -> bool:
        return line.strip().startswith(BULLETS)


@register("punctuation")
class Punctuation(_LineFilter):
    """Drop when more than 85% of lines do not end with ``. ? ! " '``."""

    reason = "punctuation"

    def __init__(self, max_num_sentences_without_endmark_ratio: float = 0.85, mode: Mode = "filter"):
        super().__init__(high=max_num_sentences_without_endmark_ratio, mode=mode)

    def line_ok(self, line: str) -> bool:
        return not line.strip().endswith(END_MARKS)


@register("ellipsis")
class EllipsisLines(_LineFilter):
    """Drop when more than 30% of lines end with an ellipsis (``...``, ``…``, ``[...]``, ``read more``, ...)."""

    reason = "ellipsis"
    _ENDS: ClassVar[tuple[str, ...]] = tuple(ELLIPSIS_MARKS)

    def __init__(self, max_num_lines_ending_with_ellipsis_ratio: float = 0.3, mode: Mode = "filter"):
        super().__init__(high=max_num_lines_ending_with_ellipsis_ratio, mode=mode)

    def line_ok(self, line: str) -> bool:
        return line.strip().lower().endswith(self._ENDS)


@register("boilerplate_string")
class BoilerPlateString(ScoreFilter):
    """Drop when more than 40% of paragraphs (split on blank lines) hold a policy or cookie phrase,
    or any paragraph says "lorem ipsum"."""

    reason = "boilerplate_string_ratio"

    def __init__(self, max_boilerplate_string_ratio: float = 0.4, mode: Mode = "filter"):
        super().__init__(high=max_boilerplate_string_ratio, mode=mode)

    def score(self, doc: Document) -> float:
        paragraphs = doc.text.split("\n\n")
        hits = 0
        for p in paragraphs:
            p = p.strip().lower()
            if "lorem ipsum" in p:
                return 1.0
            hits += any(s in p for s in POLICY_SUBSTRINGS)
        return hits / len(paragraphs)


@register("substring")
class Substring(ScoreFilter):
    """Keep only documents that contain ``substring`` at ``position`` (``prefix``, ``suffix``, ``any``)."""

    reason = "substring_missing"

    def __init__(self, substring: str, position: Literal["prefix", "suffix", "any"], mode: Mode = "filter"):
        super().__init__(low=1, mode=mode)
        if position not in ("prefix", "suffix", "any"):
            raise ValueError(f"position must be prefix, suffix or any, not {position!r}")
        self.substring, self.position = substring, position

    def score(self, doc: Document) -> int:
        text = doc.text
        if self.position == "prefix":
            return int(text.startswith(self.substring))
        if self.position == "suffix":
            return int(text.endswith(self.substring))
        return int(self.substring in text)
