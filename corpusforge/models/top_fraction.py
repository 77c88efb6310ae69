"""Keep the best-scoring fraction of the whole corpus: a corpus-wide cut-off for any scoring step.

A scoring step (``classifier``, ``perplexity``, ``llm_judge``) given ``keep_top_fraction`` instead
of a threshold becomes a ``KeepTopFraction`` corpus step. Inside each task it scores the documents
(the score still goes in metadata) and writes one 16-byte record per document; the decide stage
finds the exact cut-off over every task holding only the scores (8 bytes per document), and the
next stage drops the rows below it. Ties at the cut-off are broken by a hash of the document id,
then task and row, so the kept set is the same for any worker count and exactly the fraction asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from corpusforge.document import Document
from corpusforge.state import atomic_save_npy, atomic_write_json, read_json
from corpusforge.step import CorpusStep

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

# rank: the score oriented so that higher is better (perplexity negated); NaN for unscored documents.
RANK_DTYPE = np.dtype([("rank", "<f8"), ("hash", "<u8")])


class TopFraction:
    """Mixin for scoring filters: ``keep_top_fraction=f`` in the constructor yields a ``KeepTopFraction``.

    A subclass sets ``higher_is_better``, ``key``, ``batch_size``; ``score_batch`` scores with its
    ``scores`` and writes each score with its ``record`` (a scorer that counts per task, such as
    the judge, overrides ``score_batch`` itself).
    ``unscored`` (``keep`` or ``drop``) says what happens to a document ``score_batch`` left NaN.
    """

    higher_is_better: bool = True
    unscored: str = "keep"
    batch_size: int = 32

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__new__(cls)
        if kwargs.get("keep_top_fraction") is None:
            return obj
        obj.__init__(*args, **kwargs)  # not an instance of cls, so Python will not call __init__ itself
        return KeepTopFraction(obj, kwargs["keep_top_fraction"])

    def score_batch(self, docs: list[Document], ctx: TaskContext) -> list[float]:
        """Score ``docs`` and write each score into its metadata; NaN where a document stays unscored."""
        scores = self.scores(docs)  # type: ignore[attr-defined]
        for doc, score in zip(docs, scores, strict=True):
            self.record(doc, score)  # type: ignore[attr-defined]
        return scores


def check_fraction(fraction: float | None, drop: bool = True, **thresholds: Any) -> None:
    """``keep_top_fraction`` is in (0, 1] and replaces the thresholds, so none of them may be set too."""
    if fraction is None:
        return
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"keep_top_fraction must be in (0, 1], got {fraction}")
    if not drop:
        raise ValueError("keep_top_fraction drops documents; it cannot go with drop: false")
    both = [name for name, value in thresholds.items() if value is not None]
    if both:
        raise ValueError(f"keep_top_fraction is an alternative to {', '.join(both)}: set only one of them")


def keep_count(fraction: float, n: int) -> int:
    """Documents kept out of ``n`` scored: ``ceil(fraction * n)``, rounded first so 0.3 * 10 keeps 3."""
    return min(n, math.ceil(round(fraction * n, 9)))


def _tie_hash(doc_id: str) -> int:
    return xxhash.xxh3_64_intdigest(doc_id.encode("utf-8", "surrogatepass"))


class KeepTopFraction(CorpusStep):
    """Keep the top ``fraction`` of the scored documents of the whole run (drop reason ``below_top_fraction``).

    Unscored documents are not ranked; the scorer's ``unscored`` option keeps them or drops them
    (reason ``unscored``). ``fraction`` counts scored documents only. A media document without text
    (the scorer's ``media_policy`` is ``text``) is neither scored nor ranked and always kept.
    """

    def __init__(self, scorer: TopFraction, fraction: float):
        self.scorer, self.fraction = scorer, fraction
        self.media_policy = getattr(scorer, "media_policy", "as_is")
        self.name = scorer.name  # type: ignore[attr-defined]  # stats and stage named as the scoring step

    def setup(self, ctx: TaskContext) -> None:
        self.scorer.setup(ctx)  # type: ignore[attr-defined]

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        ranks: list[float] = []
        hashes: list[int] = []
        sign = 1.0 if self.scorer.higher_is_better else -1.0
        it = iter(docs)
        passed: list[int] = []  # rows of media documents without text: not judged, kept
        text_view = self.media_policy == "text"
        while batch := list(islice(it, self.scorer.batch_size)):
            judged = [not (text_view and d.media and not d.text.strip()) for d in batch]
            scores = iter(self.scorer.score_batch([d for d, j in zip(batch, judged, strict=True) if j], ctx)
                          if any(judged) else ())
            self._adopt_counts(ctx)
            passed += [len(ranks) + i for i, j in enumerate(judged) if not j]
            ranks += [sign * next(scores) if j else math.nan for j in judged]
            hashes += [_tie_hash(d.id) for d in batch]
            yield from batch
        rec = np.empty(len(ranks), dtype=RANK_DTYPE)
        rec["rank"], rec["hash"] = ranks, hashes
        atomic_save_npy(self._passed_path(ctx.task), np.asarray(passed, dtype=np.int64))
        atomic_save_npy(self._ranks_path(ctx.task), rec)

    def _adopt_counts(self, ctx: TaskContext) -> None:
        """Move what the scorer counted under its own name (tokens, cache hits) onto this step's stats."""
        inner = ctx.step_stats.pop(id(self.scorer), None)
        if inner is not None:
            mine = ctx.stats_for(self)
            mine.counts.update(inner.counts)
            mine.modified += inner.modified

    def _ranks_path(self, task: int) -> Any:
        return self.stage_dir / "ranks" / f"task_{task:06d}.npy"

    def _passed_path(self, task: int) -> Any:
        return self.stage_dir / "passed" / f"task_{task:06d}.npy"

    def _load(self, task: int) -> np.ndarray:
        return np.load(self._ranks_path(task), mmap_mode="r")

    def decide(self, partition: int, n_tasks: int) -> dict[str, Any]:
        counts = [int((~np.isnan(self._load(t)["rank"])).sum()) for t in range(n_tasks)]
        n = sum(counts)
        all_ranks = np.empty(n, dtype=np.float64)  # the one corpus-sized array: 8 bytes per scored document
        at = 0
        for t, c in enumerate(counts):
            r = self._load(t)["rank"]
            all_ranks[at : at + c] = r[~np.isnan(r)]
            at += c
        k = keep_count(self.fraction, n)
        result: dict[str, Any] = {"scored": n, "kept": k, "cut_hex": None, "last_tie": None}
        if k:
            all_ranks.partition(n - k)
            cut = float(all_ranks[n - k])
            need = k - int((all_ranks[n - k :] > cut).sum())
            ties = int((all_ranks == cut).sum())
            del all_ranks
            if need < ties:  # only some tied documents fit: those with the smallest (hash, task, row) go on
                rows = [np.flatnonzero(self._load(t)["rank"] == cut) for t in range(n_tasks)]
                keys = np.concatenate([np.stack([self._load(t)["hash"][r], np.full(len(r), t, np.uint64),
                                                 r.astype(np.uint64)], axis=1) for t, r in enumerate(rows)])
                keys = keys[np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))]
                result["last_tie"] = [int(x) for x in keys[need - 1]]  # need >= 1: cut is the k-th rank
            result["cut_hex"] = cut.hex()
            result["cut"] = cut * (1.0 if self.scorer.higher_is_better else -1.0) if math.isfinite(cut) else None
        atomic_write_json(self.stage_dir / "cutoff.json", result)
        return {"documents": n, "kept": k, "cut": result.get("cut")}

    def removed(self, task: int) -> dict[int, str]:
        res = read_json(self.stage_dir / "cutoff.json")
        rec = self._load(task)
        rank = np.asarray(rec["rank"])
        if res["cut_hex"] is None:
            keep = np.zeros(len(rank), dtype=bool)
        else:
            cut = float.fromhex(res["cut_hex"])
            keep = rank > cut
            tied = rank == cut
            if res["last_tie"] is None:
                keep |= tied
            else:
                h, t, r = res["last_tie"]
                hashes = np.asarray(rec["hash"])
                if task == t:
                    at_or_before = np.arange(len(rank)) <= r
                else:
                    at_or_before = np.full(len(rank), task < t)
                first = (hashes < np.uint64(h)) | ((hashes == np.uint64(h)) & at_or_before)
                keep |= tied & first
        out = {int(i): "below_top_fraction" for i in np.flatnonzero(~keep & ~np.isnan(rank))}
        if self.scorer.unscored == "drop":
            out.update({int(i): "unscored" for i in np.flatnonzero(np.isnan(rank))})
            for i in np.load(self._passed_path(task)).tolist() if self._passed_path(task).exists() else ():
                out.pop(int(i), None)
        return out
