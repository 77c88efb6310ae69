"""FineWeb quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.3 and appendix).

With ``compat: datatrove`` the list ratio divides by datatrove's (spaCy) word count, as its
``FineWebQualityFilter`` does with its defaults.
"""

from __future__ import annotations

from operator import methodcaller
from typing import Any

from corpusforge.curate.compat import TERMINAL_TUPLE, check_compat
from corpusforge.curate.signals import Mode, SignalFilter, Verdict, ratio
from corpusforge.curate.textstats import duplicates, stats
from corpusforge.document import Document
from corpusforge.registry import register

# Sentence-final punctuation of every script (Unicode Sentence_Terminal, the set FineWeb's own
# datatrove code uses). Closing quotes do not count, as in FineWeb.
TERMINAL_PUNCTUATION = TERMINAL_TUPLE
_ENDS_TERMINAL = methodcaller("endswith", TERMINAL_PUNCTUATION)


@register("fineweb_quality")
class FineWebQuality(SignalFilter):
    """FineWeb's custom filters (Penedo et al. 2024), defaults from the paper.

    Over non-blank lines: drop when fewer than 12% end in terminal punctuation
    (``line_punct_ratio``), more than 67% are at most 30 characters (``short_line_ratio``), or
    repeated lines hold more than 1% of the characters (newlines excluded, ``char_dup_ratio``);
    and drop when there are more than 0.3 newlines per word (``list_ratio``). An empty document
    fails with ``empty``. ``compat: datatrove``: the list ratio over datatrove's words (spaCy tokens).
    """

    def __init__(
        self,
        line_punct_thr: float = 0.12,
        line_punct_exclude_zero: bool = False,
        short_line_thr: float = 0.67,
        short_line_length: int = 30,
        char_duplicates_ratio: float = 0.01,
        new_line_ratio: float = 0.3,
        compat: str | None = None,
        mode: Mode = "filter",
    ):
        super().__init__(mode)
        self.compat = check_compat(compat)
        self.line_punct_thr, self.line_punct_exclude_zero = line_punct_thr, line_punct_exclude_zero
        self.short_line_thr, self.short_line_length = short_line_thr, short_line_length
        self.char_duplicates_ratio, self.new_line_ratio = char_duplicates_ratio, new_line_ratio

    def evaluate(self, doc: Document, signals: dict[str, Any] | None) -> str | None:
        text = doc.text
        verdict = Verdict(signals)
        sig, fail = verdict.sig, verdict.fail

        lines = [ln for ln in text.split("\n") if ln.strip()]
        if not lines:
            return "empty"
        punct = sum(map(_ENDS_TERMINAL, lines)) / len(lines)
        sig["line_punct_ratio"] = round(punct, 4)
        if punct < self.line_punct_thr and not (punct == 0 and self.line_punct_exclude_zero):
            if fail("line_punct_ratio"):
                return verdict.first
        short = sum(map(self.short_line_length.__ge__, map(len, lines))) / len(lines)
        sig["short_line_ratio"] = round(short, 4)
        if short > self.short_line_thr and fail("short_line_ratio"):
            return verdict.first
        dup = ratio(duplicates(lines)[1], len(text) - text.count("\n"))
        sig["char_dup_ratio"] = round(dup, 4)
        if dup > self.char_duplicates_ratio and fail("char_dup_ratio"):
            return verdict.first
        n_words = stats(doc, "datatrove" if self.compat else "whitespace").n_words
        newline = ratio(text.count("\n"), n_words)
        sig["list_ratio"] = round(newline, 4)
        if newline > self.new_line_ratio and fail("list_ratio"):
            return verdict.first
        return verdict.first
