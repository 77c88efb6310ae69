"""Text statistics shared by the heuristic filters, computed once per document text.

``stats(doc)`` returns a ``TextStats`` cached on the document (keyed by the text object, so a mapper
that replaces the text invalidates it). Words are what ``str.split()`` gives (``doc.words``), but
found and hashed over the text's code points in NumPy, then grouped by distinct word, so per-word
rules run over the distinct words weighted by their counts; n-grams are hashed into NumPy arrays so
repetition signals cost a few vectorised passes, not Python loops.
"""

from __future__ import annotations

import re
import string
from itertools import repeat

import numpy as np

from corpusforge.dedup.shingles import position_sums
from corpusforge.document import Document

# A sentence ends at . ! ? (and CJK full stops), with closing quotes or brackets, before a space or
# the end; not after a title (Mr. Dr. St. ...) or an initial (J. R. R. Tolkien).
_SENTENCE_END = re.compile(
    # The punctuation comes first so the engine can scan for it; the checks look back from it.
    r"[.!?。！？]+(?<!\b[A-Z]\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)"
    r"(?<!\bProf\.)(?<!\bvs\.)(?<!\be\.g\.)(?<!\bi\.e\.)['\"”’)\]]*(?=\s|$)"
)
# Punctuation stripped from word edges (ASCII plus common typographic marks).
PUNCTUATION = string.punctuation + "“”‘’«»„‚‹›—–…·•¡¿"
_MUL = np.uint64(0x9E3779B97F4A7C15)
# What str.split() splits on (str.isspace); the last whitespace code point is U+3000, and the entry
# after it stands for every higher code point.
_LAST_SPACE = 0x3000
_SPACE = np.array([chr(c).isspace() for c in range(_LAST_SPACE + 1)] + [False])


def code_points(text: str) -> np.ndarray:
    """The text's code points: uint8 for ASCII text, else uint32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The text's code points (``code_points``) and where each ``str.split()`` word starts and
    ends (exclusive), found in one vectorised pass."""
    units = code_points(text)
    space = _SPACE[units] if units.dtype == np.uint8 else _SPACE[np.minimum(units, _LAST_SPACE + 1)]
    pad = np.ones(1, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate((pad, space, pad)).view(np.int8)))
    return units, edges[0::2], edges[1::2]  # a word starts where spaces stop; the next edge ends it


class TextStats:
    """Lazily computed views of one text: distinct words, lines, paragraphs, n-gram hashes."""

    __slots__ = ("text", "_words", "_lines", "_spans", "_paragraphs", "_ids", "_distinct", "_counts",
                 "_word_hash", "_ngrams", "_stripped", "_repeats", "_cum", "_vocab")

    def __init__(self, text: str, lines: list[str], spans: tuple[np.ndarray, np.ndarray] | None = None):
        self.text = text
        self._words: list[str] | None = None
        self._lines = lines
        # Words are str.split() words unless a tokenizer gave their (start, end) offsets.
        self._spans: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if spans is not None:
            self._spans = (code_points(text), *spans)
            self._words = [text[a:b] for a, b in zip(spans[0].tolist(), spans[1].tolist(), strict=True)]
        self._paragraphs: list[str] | None = None
        self._ids: np.ndarray | None = None
        self._distinct: list[str] = []
        self._counts: np.ndarray | None = None
        self._word_hash: np.ndarray | None = None
        self._ngrams: dict[int, np.ndarray] = {}
        self._stripped: list[str] | None = None
        self._repeats: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cum: np.ndarray | None = None
        self._vocab: set[str] | None = None

    @property
    def words(self) -> list[str]:
        """The words as strings (``str.split()`` or the tokenizer's); the signals need only their spans."""
        if self._words is None:
            self._words = self.text.split()
        return self._words

    @property
    def n_words(self) -> int:
        return len(self._word_spans()[1])

    def _word_spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._spans is None:
            self._spans = word_spans(self.text)
        return self._spans

    @property
    def nonempty_lines(self) -> list[str]:
        """Lines with at least one character (what splitting on runs of newlines gives)."""
        return [ln for ln in self._lines if ln]

    @property
    def lines(self) -> list[str]:
        return self._lines

    @property
    def paragraphs(self) -> list[str]:
        """Blocks separated by one or more blank lines (two or more newlines)."""
        if self._paragraphs is None:
            text = self.text.strip()
            parts = text.split("\n\n")
            if "\n\n\n" in text:
                # A run of 3+ newlines left empty pieces (one per extra pair) and a newline at the
                # start of the next piece; dropping both gives the regex split on \n{2,}.
                parts = [p[1:] if p[0] == "\n" else p for p in parts if p]
            self._paragraphs = parts
        return self._paragraphs

    @property
    def word_ids(self) -> np.ndarray:
        """Every word's number (int64) among the distinct words (``distinct_words[word_ids[i]]`` is word i)."""
        return self._index()[0]

    @property
    def distinct_words(self) -> list[str]:
        """The distinct words (``word_ids`` index this list), each taken at its first occurrence."""
        return self._index()[1]

    @property
    def word_counts(self) -> np.ndarray:
        """How often each distinct word occurs (int64, aligned with ``distinct_words``)."""
        return self._index()[2]

    def _index(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Words grouped by hash with one sort (no dict of strings, which costs 2x the hashing)."""
        if self._ids is None or self._counts is None:
            h = self.word_hash
            m = len(h)
            sorted_pos, starts = hash_order(h, np.arange(m, dtype=np.int64))
            group = np.zeros(m, dtype=np.int64)
            group[starts[1:]] = 1
            ids = np.empty(m, dtype=np.int64)
            ids[sorted_pos] = np.cumsum(group)
            text, (_, first, last) = self.text, self._word_spans()
            reps = sorted_pos[starts]
            self._distinct = [text[a:b] for a, b in zip(first[reps].tolist(), last[reps].tolist(), strict=True)]
            self._counts = np.diff(np.append(starts, m))
            self._ids = ids
        return self._ids, self._distinct, self._counts

    @property
    def stripped_distinct(self) -> list[str]:
        """Each distinct word with punctuation stripped from both ends ("" if it was punctuation only)."""
        if self._stripped is None:
            self._stripped = list(map(str.strip, self.distinct_words, repeat(PUNCTUATION)))
        return self._stripped

    @property
    def word_hash(self) -> np.ndarray:
        """64-bit hash of every word (uint64), in order: ``position_sums`` over its code points."""
        if self._word_hash is None:
            units, first, last = self._word_spans()
            if len(first):
                with np.errstate(over="ignore"):
                    self._word_hash = position_sums(units, first, last - first, distinct_tail=True)
            else:
                self._word_hash = np.empty(0, dtype=np.uint64)
        return self._word_hash

    @property
    def word_len(self) -> np.ndarray:
        """Characters in every word (int64), in order."""
        _, first, last = self._word_spans()
        return last - first

    def ngram_hash(self, n: int) -> np.ndarray:
        """Hash of every word n-gram (position i covers words i..i+n-1); built from the (n-1)-grams."""
        if n in self._ngrams:
            return self._ngrams[n]
        if n == 1:
            h = self.word_hash
        else:
            prev = self.ngram_hash(n - 1)
            if len(prev) <= 1:
                h = np.empty(0, dtype=np.uint64)
            else:
                # Polynomial rolling combination; uint64 arithmetic wraps, which is what we want.
                h = prev[:-1] * _MUL + self.word_hash[n - 1 :]
        self._ngrams[n] = h
        return h

    def ngram_chars(self, n: int, joiner: int) -> np.ndarray:
        """Characters of every n-gram: the words' lengths plus ``joiner`` characters between words."""
        if self._cum is None:
            self._cum = np.concatenate(([0], np.cumsum(self.word_len)))
        cum = self._cum
        m = self.n_words - n + 1
        if m <= 0:
            return np.empty(0, dtype=np.int64)
        return cum[n : n + m] - cum[:m] + joiner * (n - 1)

    def repeats(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions whose n-gram occurs more than once, with each one's first position and count.

        An n-gram can only repeat where its (n-1)-gram prefix repeats, so each size sorts just the
        positions that repeated at the size below: on prose the candidates shrink fast with n.
        """
        if n in self._repeats:
            return self._repeats[n]
        h = self.ngram_hash(n)
        m = len(h)
        if n <= 2:
            pos = np.arange(m, dtype=np.int64)
        else:
            below = self.repeats(n - 1)[0]
            pos = below[below < m]
        if len(pos) == 0:
            empty = np.empty(0, dtype=np.int64)
            out = (empty, empty, empty)
        else:
            sorted_pos, starts = hash_order(h, pos)
            counts = np.diff(np.append(starts, len(sorted_pos)))
            # Per position, by scattering (no second sort): each group is ordered by position,
            # so its first element is the n-gram's first occurrence.
            count_at = np.zeros(m, dtype=np.int64)
            count_at[sorted_pos] = np.repeat(counts, counts)
            first_at = np.empty(m, dtype=np.int64)
            first_at[sorted_pos] = np.repeat(sorted_pos[starts], counts)
            p = np.flatnonzero(count_at >= 2)
            out = (p, first_at[p], count_at[p])
        self._repeats[n] = out
        return out

    def lower_vocabulary(self) -> set[str]:
        """Distinct lower-cased words (punctuation stripped from their edges)."""
        if self._vocab is None:
            self._vocab = set(map(str.lower, filter(None, self.stripped_distinct)))
        return self._vocab


def hash_order(h: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pos`` (ascending) ordered by (``h[pos]``, position), and where each run of equal hashes starts.

    One ``np.sort`` of keys packing the hash's top bits above the position (SIMD sorts make that
    ~5x cheaper than ``argsort``); runs of equal keys are checked against the full 64-bit hashes,
    and in the rare case where two hashes share their top bits, ``argsort`` does it exactly.
    """
    if len(pos) == 0:
        return pos, pos
    bits = max(1, int(pos[-1]).bit_length())
    shift = np.uint64(bits)
    full = h[pos]
    key = ((full >> shift) << shift) | pos.view(np.uint64)
    key.sort()
    sorted_pos = (key & np.uint64((1 << bits) - 1)).view(np.int64)
    top = key >> shift
    same = top[1:] == top[:-1]
    hs = h[sorted_pos]
    if np.any(same & (hs[1:] != hs[:-1])):
        order = np.argsort(full, kind="stable")
        sorted_pos, hs = pos[order], full[order]
        same = hs[1:] == hs[:-1]
    return sorted_pos, np.flatnonzero(np.r_[True, ~same])


def count_sentences(text: str) -> int:
    """Sentences in ``text``: terminal-punctuation boundaries, plus a trailing unterminated one."""
    text = text.strip()
    if not text:
        return 0
    ends = list(_SENTENCE_END.finditer(text))
    n = len(ends)
    if not ends or ends[-1].end() < len(text):
        n += 1
    return n


def stats(doc: Document, words: str = "whitespace") -> TextStats:
    """The document's shared ``TextStats`` (created on first use, rebuilt when the text changes).

    ``words="datatrove"`` gives the statistics over datatrove's English words (spaCy tokens, see
    ``corpusforge.curate.compat``) for the filters run with ``compat: datatrove``.
    """
    key = (id(doc), words)
    cached = _STATS.get(key)
    if cached is not None and cached[0] is doc and cached[1].text is doc.text:
        return cached[1]
    if words == "whitespace":
        ts = TextStats(doc.text, doc.lines)
    elif words == "datatrove":
        from corpusforge.curate.compat import word_spans as datatrove_spans

        ts = TextStats(doc.text, doc.lines, datatrove_spans(doc.text))
    else:
        raise ValueError(f"words must be 'whitespace' or 'datatrove', not {words!r}")
    if len(_STATS) >= _CACHE_SIZE:
        # Documents flow through a chain of steps one at a time (or in small batches), so a few
        # recent entries are all that is ever reused.
        _STATS.pop(next(iter(_STATS)))
    _STATS[key] = (doc, ts)
    return ts


# Document has __slots__ and JSON-only metadata, so the cache lives beside it, keyed by identity
# and word splitting.
_STATS: dict[tuple[int, str], tuple[Document, TextStats]] = {}
_CACHE_SIZE = 4  # n-gram arrays of a book-length document take ~20 MB


def duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated items, characters in the repeats): every occurrence after the first counts."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


def top_ngram_chars(ts: TextStats, n: int) -> int:
    """Characters covered by the most frequent word n-gram: its length (space-joined) times its count.

    Ties in frequency go to the n-gram seen first, as ``Counter.most_common`` does.
    """
    top = top_ngram(ts, n)
    if top is None:
        return 0
    at, best = top
    return int(ts.ngram_chars(n, 1)[at]) * best


def top_ngram(ts: TextStats, n: int) -> tuple[int, int] | None:
    """(first position, count) of the most frequent word n-gram, the earliest on ties; None if none."""
    if len(ts.ngram_hash(n)) == 0:
        return None
    pos, first, count = ts.repeats(n)
    if len(pos) == 0:
        return 0, 1  # every n-gram is unique: the first one is "the most frequent"
    best = int(count.max())
    return int(first[count == best].min()), best


def repeated_ngram_run_chars(ts: TextStats, n: int) -> int:
    """Characters of the words covered by n-grams that repeat an earlier one, plus one space between
    neighbouring words of each run of overlapping repeats (NeMo Curator's duplicate n-gram count)."""
    pos, first, _ = ts.repeats(n)
    starts = pos[first < pos]
    if len(starts) == 0:
        return 0
    ends = starts + n
    new_run = np.r_[True, starts[1:] >= np.maximum.accumulate(ends)[:-1]]
    at = np.flatnonzero(new_run)
    run_start, run_end = starts[at], np.maximum.reduceat(ends, at)
    cum = np.concatenate(([0], np.cumsum(ts.word_len)))
    chars = int((cum[run_end] - cum[run_start]).sum())
    return chars + int((run_end - run_start - 1).sum())


def duplicate_ngram_chars(ts: TextStats, n: int) -> int:
    """Characters (words joined without spaces) in n-grams that repeat an earlier one.

    Scans left to right; after a repeated n-gram the scan jumps past it, so overlapping repeats are
    not counted twice (the rule as implemented for Gopher by datatrove and Dolma). Only positions
    that repeat an earlier n-gram (found with sorts, see ``TextStats.repeats``) are walked in Python.
    """
    h = ts.ngram_hash(n)
    m = len(h)
    if m == 0:
        return 0
    pos, first, _ = ts.repeats(n)
    later = first < pos
    candidates, cand_first = pos[later].tolist(), first[later].tolist()
    if not candidates:
        return 0
    chars = ts.ngram_chars(n, 0)
    skipped = np.zeros(m, dtype=bool)
    total = 0
    nxt = 0
    for i, f in zip(candidates, cand_first, strict=True):
        if i < nxt:
            continue
        if skipped[f]:
            # The first occurrence was jumped over, so it never entered the seen set: look for
            # another earlier occurrence that did.
            earlier = np.flatnonzero(h[:i] == h[i])
            if skipped[earlier].all():
                continue
        total += int(chars[i])
        skipped[i + 1 : i + n] = True
        nxt = i + n
    return total
