"""Data augmentation: each document goes on, followed by ``factor`` changed copies of it.

A copy gets a new stable id (a hash of the original id, the step, the seed and the copy number),
the original's source and offset, ``metadata["augmented_from"]`` (the original's id) and
``metadata["augmentation"]`` (the step), and is counted as modified, so lineage's ``modified_by``
names the augmentation. In a document carrying media each piece of text between placeholders is
augmented on its own, so media stays where it was; one without text has no copy. Every random choice comes from a generator seeded by ``seed``, the step,
the document id and the copy number: the copies do not depend on tasks, batches or workers.
"""

from __future__ import annotations

import copy
import random
import re
import string
from abc import abstractmethod
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Literal

import xxhash

from corpusforge.document import Document
from corpusforge.media.items import map_between
from corpusforge.registry import register
from corpusforge.step import Step

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

AUGMENTED_FROM = "augmented_from"
AUGMENTATION = "augmentation"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_PARAGRAPH = re.compile(r"\n\s*\n")
_WORDS = re.compile(r"(\s+)")


def copy_id(doc_id: str, step: str, seed: int, k: int) -> str:
    """Id of the ``k``-th copy (16 hex chars, xxh3-64, like source ids): stable across runs."""
    return xxhash.xxh3_64_hexdigest(f"{doc_id}\x00{step}\x00{seed}\x00{k}".encode("utf-8", "surrogatepass"))


class Augmenter(Step):
    """Yield each document (``keep_original``), then up to ``factor`` augmented copies.

    ``fraction`` augments only that share of documents, chosen by a seeded hash of the id. A copy
    whose text comes out unchanged (one sentence has no order to shuffle) is not emitted; the
    step counts ``augmented`` and ``unchanged`` copies. ``keep_original: false`` replaces each
    document by its copies (reason ``replaced_by_augmentation``); one without a copy stays.
    """

    def __init__(self, factor: int = 1, seed: int = 0, fraction: float = 1.0, keep_original: bool = True,
                 batch_size: int = 64):
        if factor < 1 or batch_size < 1:
            raise ValueError("factor and batch_size must be >= 1")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        self.factor, self.seed, self.fraction = factor, seed, fraction
        self.keep_original, self.batch_size = keep_original, batch_size

    @abstractmethod
    def augment(self, text: str, rng: random.Random) -> str | None:
        """A changed version of ``text`` drawn with ``rng``, or None when there is nothing to change."""

    def augment_batch(self, texts: list[str], rngs: list[random.Random]) -> list[str | None]:
        """``augment`` over many copies; model-backed steps override it to batch their calls."""
        return [self.augment(t, r) for t, r in zip(texts, rngs, strict=True)]

    def _chosen(self, doc_id: str) -> bool:
        if self.fraction >= 1.0:
            return True
        h = xxhash.xxh3_64_intdigest(doc_id.encode("utf-8", "surrogatepass"), seed=self.seed)
        return h < self.fraction * 2**64

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        it = iter(docs)
        while batch := list(islice(it, self.batch_size)):
            jobs = [(doc, k) for doc in batch if self._chosen(doc.id) for k in range(self.factor)]
            rngs = [random.Random(f"{self.seed}:{self.name}:{doc.id}:{k}") for doc, k in jobs]
            if any(doc.media for doc, _ in jobs):  # rewrite the text between media placeholders only
                texts = self._between_media(jobs, rngs)
            else:
                texts = self.augment_batch([doc.text for doc, _ in jobs], rngs)
            made: dict[str, list[Document]] = {}
            for (doc, k), text in zip(jobs, texts, strict=True):
                siblings = made.setdefault(doc.id, [])
                if text is None or text == doc.text or any(text == s.text for s in siblings):
                    ctx.count(self, "unchanged")
                    continue
                meta = copy.deepcopy(doc.metadata)
                meta[AUGMENTED_FROM], meta[AUGMENTATION] = doc.id, self.name
                new_id = copy_id(doc.id, self.name, self.seed, k)
                twin = Document(text, new_id, doc.source, doc.offset, meta, doc.media)
                ctx.modified(self, twin, "augmented")
                ctx.count(self, "augmented")
                siblings.append(twin)
            for doc in batch:
                if self.keep_original or not made.get(doc.id):
                    yield doc
                else:
                    ctx.drop(self, doc, "replaced_by_augmentation")
                yield from made.get(doc.id, ())


    def _between_media(self, jobs: list[tuple[Document, int]], rngs: list[random.Random]) -> list[str | None]:
        """Copies of media documents: each piece of text between placeholders augmented with the
        copy's generator (text documents as a whole, as without media)."""
        out: list[str | None] = []
        for (doc, _), rng in zip(jobs, rngs, strict=True):
            if doc.media:
                out += map_between([doc.text], lambda pieces, r=rng: self.augment_batch(pieces, [r] * len(pieces)))
            else:
                out += self.augment_batch([doc.text], [rng])
        return out


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, or the lines when the text has no blank line."""
    parts = [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]
    return parts if len(parts) > 1 else [ln.strip() for ln in text.splitlines() if ln.strip()]


@register("sentence_shuffle")
class SentenceShuffle(Augmenter):
    """Shuffle the sentences of each paragraph (``scope: paragraph``) or of the whole document.

    Sentences end at ``.``, ``!`` or ``?`` followed by white space; paragraphs are blank-line
    separated. ``scope: document`` mixes sentences across paragraphs and returns one paragraph.
    """

    def __init__(self, scope: Literal["paragraph", "document"] = "paragraph", factor: int = 1, seed: int = 0,
                 fraction: float = 1.0, keep_original: bool = True):
        super().__init__(factor, seed, fraction, keep_original)
        self.scope = scope

    def augment(self, text: str, rng: random.Random) -> str | None:
        paras = [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]
        if self.scope == "document":
            paras = [" ".join(paras)]
        out = []
        for p in paras:
            sentences = SENTENCE_END.split(p)
            rng.shuffle(sentences)
            out.append(" ".join(sentences))
        return "\n\n".join(out)


@register("paragraph_extraction")
class ParagraphExtraction(Augmenter):
    """A copy is a random run of ``min_paragraphs``..``max_paragraphs`` consecutive paragraphs.

    Paragraphs are blank-line separated (lines, when there is no blank line); a run shorter than
    ``min_chars`` characters is not emitted.
    """

    def __init__(self, min_paragraphs: int = 1, max_paragraphs: int = 3, min_chars: int = 200, factor: int = 1,
                 seed: int = 0, fraction: float = 1.0, keep_original: bool = True):
        if not 1 <= min_paragraphs <= max_paragraphs:
            raise ValueError("need 1 <= min_paragraphs <= max_paragraphs")
        super().__init__(factor, seed, fraction, keep_original)
        self.min_paragraphs, self.max_paragraphs, self.min_chars = min_paragraphs, max_paragraphs, min_chars

    def augment(self, text: str, rng: random.Random) -> str | None:
        paras = paragraphs(text)
        if len(paras) <= self.min_paragraphs:
            return None
        n = rng.randint(self.min_paragraphs, min(self.max_paragraphs, len(paras) - 1))
        start = rng.randrange(len(paras) - n + 1)
        out = "\n\n".join(paras[start : start + n])
        return out if len(out) >= self.min_chars else None


def _typo(word: str, rng: random.Random) -> str:
    """One character-level edit: swap two neighbours, drop, double or replace a character."""
    i = rng.randrange(len(word))
    op = rng.randrange(4) if len(word) > 1 else rng.choice((2, 3))
    if op == 0:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    if op == 2:
        return word[: i + 1] + word[i:]
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]


@register("token_noise")
class TokenNoise(Augmenter):
    """Typos: each word, with probability ``p``, gets one character swapped, dropped, doubled or replaced.

    White space (line breaks included) is kept as it was.
    """

    def __init__(self, p: float = 0.05, factor: int = 1, seed: int = 0, fraction: float = 1.0,
                 keep_original: bool = True):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"p must be in (0, 1], got {p}")
        super().__init__(factor, seed, fraction, keep_original)
        self.p = p

    def augment(self, text: str, rng: random.Random) -> str | None:
        parts = _WORDS.split(text)
        for i in range(0, len(parts), 2):  # even positions are words, odd ones the white space between
            if parts[i] and rng.random() < self.p:
                parts[i] = _typo(parts[i], rng)
        return "".join(parts)


@register("random_edit")
class RandomEdit(Augmenter):
    """EDA's word edits (Wei & Zou 2019), line by line: delete, swap, insert.

    Each word is deleted with probability ``deletion``; then ``round(swap * words)`` random pairs
    are swapped and ``round(insertion * words)`` words are inserted at random places. EDA inserts
    WordNet synonyms; here the inserted word is a random word of the same document, which needs no
    lexicon and keeps the vocabulary in-domain. Line breaks are kept.
    """

    def __init__(self, insertion: float = 0.1, deletion: float = 0.1, swap: float = 0.1, factor: int = 1,
                 seed: int = 0, fraction: float = 1.0, keep_original: bool = True):
        for name, rate in (("insertion", insertion), ("deletion", deletion), ("swap", swap)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {rate}")
        if not insertion + deletion + swap:
            raise ValueError("set at least one of insertion, deletion, swap above 0")
        super().__init__(factor, seed, fraction, keep_original)
        self.insertion, self.deletion, self.swap = insertion, deletion, swap

    def augment(self, text: str, rng: random.Random) -> str | None:
        vocab = text.split()
        if not vocab:
            return None
        out = []
        for line in text.split("\n"):
            words = line.split()
            if words and self.deletion:
                kept = [w for w in words if rng.random() >= self.deletion]
                words = kept or [rng.choice(words)]  # EDA keeps one word of a line it would empty
            for _ in range(round(self.swap * len(words)) if len(words) > 1 else 0):
                a, b = rng.sample(range(len(words)), 2)
                words[a], words[b] = words[b], words[a]
            for _ in range(round(self.insertion * len(words))):
                words.insert(rng.randint(0, len(words)), rng.choice(vocab))
            out.append(" ".join(words))
        return "\n".join(out)
