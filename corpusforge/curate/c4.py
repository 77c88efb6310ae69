"""C4 heuristic cleaning (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", 2.2).

The rules as the paper lists them and as TensorFlow Datasets' ``c4_utils`` implements them: keep only
lines that end in terminal punctuation (not an ellipsis) and have at least 3 words, drop lines
mentioning javascript or cookie/terms/privacy policies, drop pages that mention "lorem ipsum",
contain a curly brace, keep fewer than 5 sentences, or contain a word from a bad-words list.
With ``compat: datatrove`` the page decides as datatrove 0.10's ``C4QualityFilter`` does: sentences
counted by spaCy's sentencizer and no bad-words rule (datatrove keeps that in another filter).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from corpusforge.curate import compat as _compat
from corpusforge.curate.compat import check_compat
from corpusforge.curate.signals import Mode, SignalFilter, Verdict
from corpusforge.curate.textstats import count_sentences, stats
from corpusforge.document import Document
from corpusforge.registry import register

END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# Every policy substring contains one of these: three searches rule most lines out.
_POLICY_HINTS = ("cookie", "policy", "terms of use")
BAD_WORDS_EN = Path(__file__).parent / "data" / "bad_words_en.txt"
# ``bad_words: default``: the shipped list, or none with ``compat: datatrove``.
DEFAULT_BAD_WORDS = "default"


_NON_WORD = re.compile(r"\W+")


@lru_cache(maxsize=8)
def load_bad_words(path: str) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """Single bad words (lower-cased) and a regex for multi-word phrases, from a list file.

    One word or phrase per line; blank lines and lines starting with ``#`` are skipped.
    """
    entries = {w.strip().lower() for w in Path(path).read_text(encoding="utf-8").splitlines()}
    entries = {w for w in entries if w and not w.startswith("#")}
    single = frozenset(w for w in entries if not _NON_WORD.search(w))
    phrases = sorted(entries - single, key=len, reverse=True)
    pattern = None
    if phrases:
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, phrases)) + r")(?!\w)", re.IGNORECASE)
    return single, pattern


def has_bad_word(doc: Document, path: str) -> bool:
    """Whether the document contains a listed word (as a whole word, any case) or phrase."""
    single, phrases = load_bad_words(path)
    vocab = stats(doc).lower_vocabulary()
    if not single.isdisjoint(vocab):
        return True
    # Words with inner punctuation ("x-rated", "word's") are split into their word-character parts.
    for w in vocab:
        if not w.isalnum() and not single.isdisjoint(_NON_WORD.split(w)):
            return True
    return phrases is not None and phrases.search(doc.text) is not None


@register("c4_quality")
class C4Quality(SignalFilter):
    """C4 line and page rules (Raffel et al. 2020, section 2.2), defaults from the paper.

    With ``remove_lines`` (the C4 behaviour) a kept document's text becomes its kept lines; in
    ``annotate`` mode the text is never changed. ``bad_words`` is a path to a word list (one word or
    phrase per line); the default is the English list shipped in ``corpusforge/curate/data``
    (a subset of LDNOOBW, the list C4 used), ``null`` switches the rule off. Reasons:
    ``lorem_ipsum``, ``curly_bracket``, ``bad_words``, ``too_few_sentences``. ``compat:
    datatrove`` counts sentences with spaCy's sentencizer and leaves bad words off by default.
    """

    def __init__(
        self,
        min_sentences: int = 5,
        min_words_per_line: int = 3,
        max_word_length: int = 1000,
        filter_no_terminal_punct: bool = True,
        filter_javascript: bool = True,
        filter_policy: bool = True,
        filter_lorem_ipsum: bool = True,
        filter_curly_bracket: bool = True,
        remove_citations: bool = True,
        bad_words: str | None = DEFAULT_BAD_WORDS,
        remove_lines: bool = True,
        compat: str | None = None,
        mode: Mode = "filter",
    ):
        super().__init__(mode)
        self.compat = check_compat(compat)
        self._count_sentences = _compat.count_sentences if self.compat else count_sentences
        if bad_words == DEFAULT_BAD_WORDS:
            bad_words = None if self.compat else str(BAD_WORDS_EN)
        self.min_sentences, self.min_words_per_line = min_sentences, min_words_per_line
        self.max_word_length = max_word_length
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.filter_javascript, self.filter_policy = filter_javascript, filter_policy
        self.filter_lorem_ipsum, self.filter_curly_bracket = filter_lorem_ipsum, filter_curly_bracket
        self.remove_citations = remove_citations
        if bad_words is not None and not Path(bad_words).is_file():
            raise ValueError(f"bad_words: no such file {bad_words!r}")
        self.bad_words = bad_words
        self.remove_lines = remove_lines

    def evaluate(self, doc: Document, signals: dict[str, Any] | None) -> str | None:
        verdict = Verdict(signals)
        sig, fail = verdict.sig, verdict.fail

        kept: list[str] = []
        n_sentences = 0
        # "Fewer than k words" needs at most k pieces: split stops there instead of cutting the line.
        min_words = self.min_words_per_line
        max_split = max(min_words - 1, 0)
        removed = {"no_terminal_punct": 0, "too_few_words": 0, "javascript": 0, "policy": 0, "too_long_word": 0}
        lorem = curly = False
        # The options as locals: the loop below runs once per line.
        max_word_length, citations = self.max_word_length, self.remove_citations
        no_terminal, lorem_rule, javascript = self.filter_no_terminal_punct, self.filter_lorem_ipsum, self.filter_javascript
        curly_rule, policy = self.filter_curly_bracket, self.filter_policy
        for line in doc.lines:
            line = line.strip()
            if not line:
                continue
            raw = line  # words are counted before citation markers are removed, as in C4
            if 0 <= max_word_length < len(line) and any(len(w) > max_word_length for w in line.split()):
                removed["too_long_word"] += 1
                continue
            if citations and "[" in line:
                line = CITATION.sub("", line)
            if no_terminal and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                removed["no_terminal_punct"] += 1
                continue
            if min_words > 0 and len(raw.split(None, max_split)) < min_words:
                removed["too_few_words"] += 1
                continue
            lower = line.lower()
            if lorem_rule and "lorem ipsum" in lower:
                lorem = True
                if fail("lorem_ipsum"):
                    return verdict.first
            if javascript and "javascript" in lower:
                removed["javascript"] += 1
                continue
            if curly_rule and "{" in line:
                curly = True
                if fail("curly_bracket"):
                    return verdict.first
            if policy and any(h in lower for h in _POLICY_HINTS) and any(p in lower for p in POLICY_SUBSTRINGS):
                removed["policy"] += 1
                continue
            n_sentences += self._count_sentences(line)
            kept.append(line)
        sig.update(lorem_ipsum=lorem, curly_bracket=curly, sentences=n_sentences, lines_kept=len(kept))
        sig["lines_removed"] = removed
        if self.bad_words is not None:
            hit = has_bad_word(doc, self.bad_words)
            sig["bad_word"] = hit
            if hit and fail("bad_words"):
                return verdict.first
        if n_sentences < self.min_sentences and fail("too_few_sentences"):
            return verdict.first
        if verdict.first is None and self.remove_lines and self.drops:
            new = "\n".join(kept)
            if new != doc.text:
                doc.text = new
        return verdict.first
