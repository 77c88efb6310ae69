"""What ``compat: datatrove`` changes: datatrove 0.10's word splitting, punctuation and sentences.

datatrove splits English into words with spaCy's rule-based English tokenizer (``spacy.blank("en")``,
no model: punctuation, ``n't`` and ``'s`` become tokens of their own; whitespace tokens are
dropped) and into sentences with spaCy's ``sentencizer``. Its filters also use their own character
sets: "punctuation" for the Gopher symbol-word rule and "terminal punctuation" for FineWeb. This
module gives those three things to the filters that take ``compat: datatrove``; the rules are the
filters' own (see ``docs/curate.md``, "paper, datatrove, corpusforge"). spaCy comes with the
``quality`` extra and is imported only when a ``compat: datatrove`` filter first runs.
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Any, Literal

import numpy as np

Compat = Literal["datatrove"]
COMPAT_CHOICES = (None, "datatrove")


def check_compat(value: str | None) -> str | None:
    """The validated ``compat`` option: None (the paper's rules, corpusforge's counting) or datatrove."""
    if value not in COMPAT_CHOICES:
        raise ValueError(f"compat must be null or 'datatrove', not {value!r}")
    return value


def _ranges(*spans: int | tuple[int, int]) -> frozenset[str]:
    out: set[str] = set()
    for s in spans:
        a, b = (s, s) if isinstance(s, int) else s
        out.update(map(chr, range(a, b + 1)))
    return frozenset(out)


# datatrove's terminal punctuation (FineWeb's line_punct_ratio): Unicode 15.0's Sentence_Terminal
# characters plus the Khmer signs U+17D6, U+17D9 and U+17DA. Closing quotes are not in it.
TERMINAL_PUNCTUATION = _ranges(
    0x21, 0x2E, 0x3F, 0x589, (0x61D, 0x61F), 0x6D4, (0x700, 0x702), 0x7F9, 0x837, 0x839, (0x83D, 0x83E),
    (0x964, 0x965), (0x104A, 0x104B), 0x1362, (0x1367, 0x1368), 0x166E, (0x1735, 0x1736), (0x17D4, 0x17D6),
    (0x17D9, 0x17DA), 0x1803, 0x1809, (0x1944, 0x1945), (0x1AA8, 0x1AAB), (0x1B5A, 0x1B5B), (0x1B5E, 0x1B5F),
    (0x1B7D, 0x1B7E), (0x1C3B, 0x1C3C), (0x1C7E, 0x1C7F), (0x203C, 0x203D), (0x2047, 0x2049), 0x2E2E, 0x2E3C,
    (0x2E53, 0x2E54), 0x3002, 0xA4FF, (0xA60E, 0xA60F), 0xA6F3, 0xA6F7, (0xA876, 0xA877), (0xA8CE, 0xA8CF),
    0xA92F, (0xA9C8, 0xA9C9), (0xAA5D, 0xAA5F), (0xAAF0, 0xAAF1), 0xABEB, 0xFE52, (0xFE56, 0xFE57), 0xFF01,
    0xFF0E, 0xFF1F, 0xFF61, (0x10A56, 0x10A57), (0x10F55, 0x10F59), (0x10F86, 0x10F89), (0x11047, 0x11048),
    (0x110BE, 0x110C1), (0x11141, 0x11143), (0x111C5, 0x111C6), 0x111CD, (0x111DE, 0x111DF), (0x11238, 0x11239),
    (0x1123B, 0x1123C), 0x112A9, (0x1144B, 0x1144C), (0x115C2, 0x115C3), (0x115C9, 0x115D7), (0x11641, 0x11642),
    (0x1173C, 0x1173E), 0x11944, 0x11946, (0x11A42, 0x11A43), (0x11A9B, 0x11A9C), (0x11C41, 0x11C42),
    (0x11EF7, 0x11EF8), (0x11F43, 0x11F44), (0x16A6E, 0x16A6F), 0x16AF5, (0x16B37, 0x16B38), 0x16B44, 0x16E98,
    0x1BC9F, 0x1DA88,
)
TERMINAL_TUPLE = tuple(sorted(TERMINAL_PUNCTUATION))

# datatrove's punctuation (a token made only of these is a "symbol", not a word, for Gopher quality):
# ASCII punctuation, common typographic and full-width marks, the C0 controls except tab and
# newline, DEL and the C1 controls, and the terminal punctuation above.
PUNCTUATION = (
    frozenset(string.punctuation + "—”％１〈、━【「」，】；～“《„’∶´．（–？！：«〉》）。…►»")
    | _ranges((0, 8), (11, 31), (127, 159))
    | TERMINAL_PUNCTUATION
)


@lru_cache(maxsize=1)
def _sentence_punct() -> frozenset[str]:
    from spacy.pipeline import Sentencizer

    return frozenset("".join(Sentencizer.default_punct_chars))


@lru_cache(maxsize=1)
def _nlp() -> Any:
    try:
        import spacy
    except ImportError as e:  # pragma: no cover - spaCy is in the quality extra
        raise ImportError("compat: datatrove needs spaCy (pip install 'corpusforge[quality]')") from e
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Where each datatrove English word starts and ends (code point offsets, int64).

    The words are spaCy's English tokens with whitespace-only tokens dropped, as datatrove's
    ``split_into_words`` gives them.
    """
    from spacy.attrs import IDX, IS_SPACE, LENGTH

    nlp = _nlp()
    nlp.max_length = len(text) + 10
    with nlp.memory_zone():
        arr = nlp.tokenizer(text).to_array([IDX, LENGTH, IS_SPACE]).astype(np.int64)
    if arr.ndim == 1:  # pragma: no cover - to_array with several attributes is always 2-D
        arr = arr.reshape(-1, 3)
    arr = arr[arr[:, 2] == 0]
    return arr[:, 0].copy(), arr[:, 0] + arr[:, 1]


def count_sentences(line: str) -> int:
    """Sentences in ``line`` as spaCy's sentencizer finds them (datatrove's ``split_into_sentences``)."""
    if not line:
        return 1
    # The sentencizer only splits after a token holding one of its punctuation characters, so a
    # line with none before its last character is one sentence: no need to run it.
    if _sentence_punct().isdisjoint(line[:-1]):
        return 1
    nlp = _nlp()
    nlp.max_length = len(line) + 10
    with nlp.memory_zone():
        return sum(1 for _ in nlp(line).sents)
