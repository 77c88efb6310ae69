"""Boilerplate lines and paragraphs repeated across many documents: count corpus-wide, then remove.

Two steps, because removing lines changes text, which a corpus-wide step (row removal) does not
express:

- ``line_dedup`` (corpus-wide): hashes every normalized line (or paragraph) of every document,
  counting each distinct one once per document; its decide stage sums the counts over all tasks
  per hash range and writes the hashes seen in at least ``min_repeats`` documents.
- ``remove_repeated_lines`` (mapper, placed after it): drops those lines from every document,
  and the document if nothing is left.

Normalization of a unit: lower-cased, whitespace runs collapsed, ends stripped; units shorter than
``min_chars`` after that are never counted or removed (blank lines, "* * *", short headings).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xxhash

from corpusforge.document import Document
from corpusforge.media.items import PLACEHOLDER, media_key, text_only
from corpusforge.registry import register
from corpusforge.state import atomic_save_npy as _save
from corpusforge.state import atomic_write_json, read_json
from corpusforge.step import CorpusStep, Mapper

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

_SPACE = re.compile(r"\s+")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
COUNT_DTYPE = np.dtype([("hash", "<u8"), ("count", "<u4")])


def units(text: str, unit: str) -> list[str]:
    """The lines (``unit="line"``) or blank-line separated paragraphs of ``text``."""
    return text.splitlines() if unit == "line" else _PARAGRAPH.split(text)


def unit_hash(u: str, min_chars: int, media: int = 0) -> int | None:
    """64-bit hash of a normalized unit, or None when it is too short to count.

    ``media`` (a media document's ``media_key``) seeds the hash: a caption line repeats only among
    documents carrying the same media, and media placeholders are not part of the unit."""
    if media:
        u = text_only(u)
    norm = _SPACE.sub(" ", u).strip().lower()
    if len(norm) < min_chars:
        return None
    return xxhash.xxh3_64_intdigest(norm.encode("utf-8", "surrogatepass"), media)


@register("line_dedup")
class LineDedup(CorpusStep):
    """Find lines/paragraphs that occur in at least ``min_repeats`` documents (see module docstring).

    Removes no documents itself: add ``remove_repeated_lines`` after it. ``partitions`` hash ranges
    split the counting (memory per decide task ~ 12 bytes x distinct units / partitions).
    """

    def __init__(self, unit: Literal["line", "paragraph"] = "line", min_repeats: int = 3, min_chars: int = 10,
                 partitions: int = 8):
        if min_repeats < 2:
            raise ValueError("min_repeats must be >= 2 (a unit in one document is not repeated)")
        if not 1 <= partitions <= 4096:
            raise ValueError("partitions must be between 1 and 4096")
        self.unit, self.min_repeats, self.min_chars, self.n_partitions = unit, min_repeats, min_chars, partitions

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        hashes: list[int] = []
        unit, min_chars = self.unit, self.min_chars
        for doc in docs:
            mk = media_key(doc) if doc.media else 0
            seen = {unit_hash(u, min_chars, mk) for u in (doc.lines if unit == "line" else units(doc.text, unit))}
            seen.discard(None)
            hashes.extend(seen)  # type: ignore[arg-type]
            yield doc
        h, c = np.unique(np.asarray(hashes, dtype=np.uint64), return_counts=True)
        out = np.empty(len(h), dtype=COUNT_DTYPE)
        out["hash"], out["count"] = h, c
        _save(self.stage_dir / "counts" / f"task_{ctx.task:06d}.npy", out)

    def partitions(self) -> int:
        return self.n_partitions

    def decide(self, partition: int, n_tasks: int) -> dict[str, Any]:
        width = (1 << 64) // self.n_partitions
        lo = partition * width
        hi = (1 << 64) if partition == self.n_partitions - 1 else lo + width
        hs, cs = [], []
        for t in range(n_tasks):
            counts = np.load(self.stage_dir / "counts" / f"task_{t:06d}.npy", mmap_mode="r")
            a = np.searchsorted(counts["hash"], np.uint64(lo))
            b = len(counts) if hi >= (1 << 64) else np.searchsorted(counts["hash"], np.uint64(hi))
            hs.append(np.asarray(counts["hash"][a:b]))
            cs.append(np.asarray(counts["count"][a:b], dtype=np.int64))
        h = np.concatenate(hs) if hs else np.empty(0, np.uint64)
        c = np.concatenate(cs) if cs else np.empty(0, np.int64)
        uniq, inv = np.unique(h, return_inverse=True)
        total = np.bincount(inv, weights=c, minlength=len(uniq)) if len(uniq) else np.empty(0)
        frequent = uniq[total >= self.min_repeats]
        _save(self.stage_dir / "frequent" / f"part_{partition:04d}.npy", frequent)
        if partition == 0:
            atomic_write_json(self.stage_dir / "frequent" / "params.json",
                              {"unit": self.unit, "min_chars": self.min_chars, "partitions": self.n_partitions})
        return {"distinct_units": int(len(uniq)), "repeated_units": int(len(frequent))}

    def removed(self, task: int) -> dict[int, str]:
        return {}


@register("remove_repeated_lines")
class RemoveRepeatedLines(Mapper):
    """Drop the lines/paragraphs that an earlier ``line_dedup`` found repeated across documents.

    ``counts_dir``: that step's folder under ``<output>/_work`` (e.g. ``line_dedup_0``); needed only
    when the recipe has more than one ``line_dedup``. Documents left empty are dropped.
    """

    drop_reason = "only_repeated_lines"

    def __init__(self, counts_dir: str | None = None):
        self.counts_dir = counts_dir
        self.frequent: np.ndarray | None = None

    def setup(self, ctx: TaskContext) -> None:
        if self.frequent is not None:
            return
        if self.counts_dir:
            folder = ctx.workdir / self.counts_dir / "frequent"
        else:
            found = sorted(ctx.workdir.glob("line_dedup_*/frequent/params.json"))
            if len(found) != 1:
                raise ValueError(f"remove_repeated_lines needs exactly one earlier line_dedup step in the recipe "
                                 f"(found {len(found)} under {ctx.workdir}); set counts_dir to choose one")
            folder = found[0].parent
        params = read_json(folder / "params.json")
        self.unit, self.min_chars = params["unit"], params["min_chars"]
        parts = [np.load(folder / f"part_{p:04d}.npy") for p in range(params["partitions"])]
        self.frequent = np.sort(np.concatenate(parts))
        self._set = set(self.frequent.tolist())  # O(1) lookups; 8 bytes per repeated unit in the array

    def map(self, doc: Document) -> Document | None:
        if not self._set:
            return doc
        parts = units(doc.text, self.unit)
        mk = media_key(doc) if doc.media else 0
        keep = [u if unit_hash(u, self.min_chars, mk) not in self._set else PLACEHOLDER * u.count(PLACEHOLDER)
                for u in parts]  # a removed unit leaves its media placeholders behind
        keep = [u for u, old in zip(keep, parts, strict=True) if u == old or u]
        if keep == parts:
            return doc
        text = ("\n" if self.unit == "line" else "\n\n").join(keep)
        if not text.strip() and not doc.media:  # a media document stays: its media is not repeated
            return None
        doc.text = text
        return doc
