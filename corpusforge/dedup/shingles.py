"""Normalized word n-gram shingles of a batch of documents, hashed to 64 bits in NumPy.

Normalization (shared by MinHash and SimHash): lower-case, every character that is neither a
word character (letter, digit, underscore, any script) nor whitespace becomes a space, and
whitespace runs collapse (``str.split``). So "Hello, World!" and "hello world" shingle alike.

Words are hashed once each, vectorised over the batch's bytes (``word_hashes``); a shingle's hash mixes its ``n`` word hashes with a
polynomial in uint64 and a murmur3 finalizer, vectorised over the whole batch. A document with
fewer than ``n`` (but at least one) words has a single shingle of all its words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_NOT_WORD = re.compile(r"[^\w]+")  # punctuation and every whitespace run become one space
_WORD = re.compile(r"\w")
_MAX_REPLACED = 64  # more distinct non-ASCII punctuation than this: the regex is faster
_MUL = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
# ASCII fast path: every ASCII character that is not [A-Za-z0-9_] becomes a space (what _NOT_WORD
# does), as a 256-byte table for ``bytes.translate`` (C speed, unlike ``str.translate`` with a dict).
_ASCII_BYTES = bytes(c if c < 128 and (chr(c).isalnum() or chr(c) == "_") else 32 for c in range(256))
_UTF8_BYTES = bytes(c if c >= 128 or chr(c).isalnum() or chr(c) == "_" else 32 for c in range(256))
_R = np.random.default_rng(0x5EED).integers(0, 1 << 63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def normalize(text: str) -> str:
    """Lower-cased text with every non-word character replaced by a space."""
    return normalize_bytes(text).decode("utf-8", "surrogatepass")


def normalize_bytes(text: str) -> bytes:
    """``normalize(text)`` as UTF-8 bytes, runs of non-word characters as runs of spaces.

    Mostly-ASCII text avoids the regex, which pays one replacement per word: the text's code points
    (UTF-32) give its few distinct non-ASCII characters with one ``np.unique`` (a ``set`` of the
    string hashes every character: 10x slower); the non-word ones (curly quotes, dashes) become
    spaces in that array (one pass, where ``bytes.replace`` paid a copy per character), then one
    ``bytes.translate`` blanks ASCII punctuation.
    """
    if text.isascii():
        return text.encode("ascii").lower().translate(_ASCII_BYTES)
    low = text.lower()
    cp = np.frombuffer(low.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    high = np.unique(cp[cp > 127]).tolist()
    odd = [u for u in high if not (c := chr(u)).isalnum() and c != "_" and not _WORD.match(c)]
    if len(odd) > _MAX_REPLACED:
        return _NOT_WORD.sub(" ", low).encode("utf-8", "surrogatepass")
    if odd:
        cp = cp.copy()
        cp[np.isin(cp, np.array(odd, dtype=np.uint32))] = 32
        low = cp.tobytes().decode("utf-32-le", "surrogatepass")
    return low.encode("utf-8", "surrogatepass").translate(_UTF8_BYTES)


def normalize_words(text: str) -> list[str]:
    """Lower-cased words with punctuation removed (see the module docstring)."""
    return normalize(text).split()


def fmix64(x: np.ndarray) -> np.ndarray:
    """Murmur3's 64-bit finalizer, in place on a uint64 array (returns it)."""
    x ^= x >> _S33
    x *= _C1
    x ^= x >> _S33
    x *= _C2
    x ^= x >> _S33
    return x


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every normalized word of every text, and each text's word count.

    The batch is normalized per text (C-speed ``str`` methods), joined with newlines and hashed
    as one UTF-8 byte array: a word's hash is fmix64 of the sum of (byte + 1) x R[position], with
    R fixed random odd 64-bit multipliers (positions past 63 share R[63]).
    """
    buf = np.frombuffer(b"\n".join([normalize_bytes(t) for t in texts]), dtype=np.uint8)
    isword = (buf != 32) & (buf != 10)
    pad = np.zeros(1, dtype=np.int8)
    edges = np.diff(np.concatenate((pad, isword.view(np.int8), pad)))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    newlines = np.flatnonzero(buf == 10)
    counts = np.bincount(np.searchsorted(newlines, starts), minlength=len(texts))
    if not len(starts):
        return np.empty(0, np.uint64), counts
    lens = ends - starts
    with np.errstate(over="ignore"):
        return position_sums(buf, starts, lens), counts


def position_sums(units: np.ndarray, starts: np.ndarray, lens: np.ndarray, distinct_tail: bool = False
                  ) -> np.ndarray:
    """fmix64 of sum (unit + 1) x R[min(position, 63)] per run of ``units``, one pass per position.

    With the runs ordered by decreasing length, those that have a k-th unit are a prefix, so
    position k costs one gather over that prefix: no per-unit position or multiplier arrays
    (uint64 sums wrap, so the order of addition does not change the result). ``distinct_tail``
    gives every position from 63 on a multiplier of its own (fmix64 of the position, odd), so runs
    that differ only by the order of their units past 63 hash apart; the shingle hash keeps R[63].
    """
    capped = np.minimum(lens, 64)
    order = np.argsort(capped.astype(np.uint8), kind="stable")[::-1]
    st, ln = starts[order], lens[order]
    longer = len(st) - np.cumsum(np.bincount(capped, minlength=65))  # longer[k]: runs longer than k
    acc = np.zeros(len(st), dtype=np.uint64)
    one = np.uint64(1)
    for k in range(min(int(ln[0]), 63)):
        a = int(longer[k])
        acc[:a] += (units[st[:a] + k].astype(np.uint64) + one) * _R[k]
    n_long = int(longer[63])
    if n_long:  # units from position 63 on
        tail = ln[:n_long] - 63
        first = np.cumsum(tail) - tail
        within = np.arange(int(tail.sum())) - np.repeat(first, tail)
        vals = units[np.repeat(st[:n_long] + 63, tail) + within].astype(np.uint64) + one
        if distinct_tail:
            vals *= fmix64(within.astype(np.uint64) + np.uint64(63)) | one
            acc[:n_long] += np.add.reduceat(vals, first)
        else:
            acc[:n_long] += np.add.reduceat(vals, first) * _R[63]
    out = np.empty(len(st), dtype=np.uint64)
    out[order] = fmix64(acc)
    return out


def shingle_hashes(texts: Sequence[str], n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every document's word ``n``-grams, concatenated, and each one's document.

    Returns ``(hashes, doc)``: ``hashes[i]`` belongs to document ``doc[i]`` (sorted ascending).
    Documents without words have no shingles.
    """
    wh, counts = word_hashes(texts)
    total = len(wh)
    if total == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    ends = np.cumsum(counts)
    starts = ends - counts
    # Shingle j starts at word j; it is valid when it ends inside its own document.
    m = total - n + 1
    with np.errstate(over="ignore"):
        if m > 0:
            acc = wh[:m].copy()
            for i in range(1, n):
                acc *= _MUL
                acc += wh[i : i + m]
            doc_of_word = np.repeat(np.arange(len(texts)), counts)
            valid = np.arange(m) + n <= ends[doc_of_word[:m]]
            hashes, doc = fmix64(acc[valid]), doc_of_word[:m][valid]
        else:
            hashes, doc = np.empty(0, np.uint64), np.empty(0, np.int64)
        short = np.flatnonzero((counts > 0) & (counts < n))
        if len(short):
            extra = np.empty(len(short), np.uint64)
            for k, d in enumerate(short):
                acc1 = np.uint64(wh[starts[d]])
                for j in range(starts[d] + 1, ends[d]):
                    acc1 = acc1 * _MUL + wh[j]
                extra[k] = acc1
            hashes = np.concatenate([hashes, fmix64(extra)])
            doc = np.concatenate([doc, short])
            order = np.argsort(doc, kind="stable")
            hashes, doc = hashes[order], doc[order]
    return hashes, doc
