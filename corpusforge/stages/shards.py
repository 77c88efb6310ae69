"""The ``shards`` stage: per task, drop the last decided rows, pick each document's copies
(``max_records``, ``mixture``) and split, encode, pack and write shard parts with their lineage.

There is one code path, over columns: staged documents are read as Arrow column batches
(``Pipeline.final_columns``); where that is not possible (media, erased documents) the batches of
``Document`` objects are converted to the same columns once. Caps, mixture, splits and counters
are small functions over the batch's arrays.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from corpusforge.document import Document
from corpusforge.media.stage import MediaEncoder
from corpusforge.observe.histogram import LengthHistogram
from corpusforge.observe.lineage import TaskLineage
from corpusforge.observe.stats import StepStats, TaskContext
from corpusforge.shards.group_split import splitter
from corpusforge.shards.packer import Packer, gather_segments
from corpusforge.splits import NO_CAP, mixture_copies, sample_hash
from corpusforge.stages.base import PerInputStage, Stage, cached_encoder, finish_stats, register_stage
from corpusforge.staging import DocumentColumns, PartedDocumentWriter
from corpusforge.state import read_json
from corpusforge.tokenize.encoder import encode_flat, stored_name

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline


@dataclass
class ShardsResult:
    """A shard (or curate-only documents) task's record: per-step counts, the parts written, documents
    and tokens per split, tokens and documents per source, the curated lengths' histogram, languages
    and licenses; ``media`` (a multimodal run) and ``documents`` (``output.documents``) when present."""

    steps: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]
    tokens_by_source: dict[str, int]
    documents_by_source: dict[str, int]
    lengths_curated: list[int]
    languages: dict[str, int]
    licenses: dict[str, int]
    shards: dict[str, list[dict[str, Any]]] | None = None
    media: dict[str, Any] | None = None
    documents: list[dict[str, Any]] | None = None

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"steps": self.steps}
        if self.shards is not None:
            rec["shards"] = self.shards
        rec.update({"counts": self.counts, "tokens_by_source": self.tokens_by_source,
                    "documents_by_source": self.documents_by_source, "lengths_curated": self.lengths_curated,
                    "languages": self.languages, "licenses": self.licenses})
        if self.media is not None:
            rec["media"] = self.media
        if self.documents is not None:
            rec["documents"] = self.documents
        return rec


# -- the batch's arrays ------------------------------------------------------------------------------


def source_names(c: DocumentColumns) -> list[str]:
    """The source name of each distinct metadata of the batch (``metas``)."""
    return [m.get("source_name", "") for m in c.metas]


def within_caps(ids: list[str], c: DocumentColumns, max_hash: dict[str, int], seed: int) -> np.ndarray:
    """Rows kept by ``max_records``: those whose sample hash is at most their source's largest kept one."""
    caps = [max_hash.get(name, NO_CAP) for name in source_names(c)]
    return np.fromiter((sample_hash(i, seed) <= caps[m] for i, m in zip(ids, c.meta_index.tolist(), strict=True)),
                       bool, len(ids))


def mixture_counts(ids: list[str], rows: np.ndarray, c: DocumentColumns, mixture: dict[str, float],
                   seed: int) -> np.ndarray:
    """How many copies of each row of ``rows`` the mixture weights of their sources ask for."""
    weights = [mixture.get(name, 1.0) for name in source_names(c)]
    return np.fromiter((mixture_copies(ids[r], seed, weights[m]) for r, m in
                        zip(rows.tolist(), c.meta_index[rows].tolist(), strict=True)), np.int64, len(rows))


def selected(ids: list[str], c: DocumentColumns, max_hash: dict[str, int], mixture: dict[str, float],
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a batch that go into the output and how many copies of each: ``max_records``
    first (by sample hash), then the mixture weights (rows with no copy left out)."""
    rows = np.arange(len(c.texts))
    if max_hash:
        rows = rows[within_caps(ids, c, max_hash, seed)]
    copies = np.ones(len(rows), dtype=np.int64)
    if mixture:
        copies = mixture_counts(ids, rows, c, mixture, seed)
        rows, copies = rows[copies > 0], copies[copies > 0]
    return rows, copies


def split_numbers(ids: list[str], rows: np.ndarray, c: DocumentColumns, splits: list[str],
                  split_for: Callable[[str, dict[str, Any]], str]) -> np.ndarray:
    """The split (its position in ``splits``) of each row of ``rows``."""
    if len(splits) == 1:
        return np.zeros(len(rows), dtype=np.int64)
    number = {name: k for k, name in enumerate(splits)}
    return np.fromiter((number[split_for(ids[r], c.metas[m])] for r, m in
                        zip(rows.tolist(), c.meta_index[rows].tolist(), strict=True)), np.int64, len(rows))


def columns_of(docs: list[Document]) -> DocumentColumns:
    """A batch of ``Document`` objects as the columns a staged-file read gives (each document its
    own metadata entry)."""
    return DocumentColumns(
        texts=[d.text for d in docs],
        chars=np.fromiter((len(d.text) for d in docs), np.int64, len(docs)),
        docs=pa.table({"id": pa.array([d.id for d in docs], pa.string()),
                       "source": pa.array([d.source for d in docs], pa.string()),
                       "offset": pa.array([d.offset for d in docs], pa.int64())}),
        meta_index=np.arange(len(docs), dtype=np.int64),
        metas=[d.metadata for d in docs],
    )


def document_batches(docs: Iterator[Document], batch_chars: int) -> Iterator[list[Document]]:
    """``docs`` cut into batches that close once their texts hold ``batch_chars`` characters (the
    cut ``read_document_columns`` makes)."""
    batch: list[Document] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += len(doc.text)
        if size >= batch_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@dataclass
class Tally:
    """Documents and tokens per split, tokens and documents per source, languages and licenses
    (a few distinct values each, for the data card: bounded whatever the corpus size)."""

    counts: dict[str, dict[str, int]]
    by_source: Counter[str]
    docs_by_source: Counter[str]
    languages: Counter[str]
    licenses: Counter[str]

    @classmethod
    def of(cls, splits: list[str]) -> Tally:
        return cls({s: {"documents": 0, "tokens": 0} for s in splits}, Counter(), Counter(), Counter(), Counter())

    def add(self, split: str, c: DocumentColumns, meta: np.ndarray, sizes: np.ndarray) -> None:
        """Count documents whose metadata are ``c.metas[meta]`` and framed sizes ``sizes`` in ``split``."""
        self.counts[split]["documents"] += len(meta)
        self.counts[split]["tokens"] += int(sizes.sum())
        tokens_by_meta = np.bincount(meta, weights=sizes, minlength=len(c.metas))
        for j, n in enumerate(np.bincount(meta, minlength=len(c.metas)).tolist()):
            if n:
                m = c.metas[j]
                self.by_source[m.get("source_name", "")] += int(tokens_by_meta[j])
                self.docs_by_source[m.get("source_name", "")] += n
                if "language" in m:
                    self.languages[str(m["language"])] += n
                if "license" in m:
                    self.licenses[str(m["license"])] += n


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block: a batch's id lists (one per document) live
    until packed, and each collection pass walked all of them; nothing in between makes cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# -- the task ----------------------------------------------------------------------------------------


class ShardTask:
    """One shard task's writers, packers, lineage and counters; ``add`` takes one batch."""

    def __init__(self, pipe: Pipeline, task: int, ctx: TaskContext):
        cfg, mcfg = pipe.recipe.sharding, pipe.recipe.media
        self.cfg, self.ctx, self.seed = cfg, ctx, pipe.recipe.seed
        self.tok = cached_encoder(str(pipe.layout.tokenizer(stored_name(pipe.recipe.tokenizer))))
        self.splits = list(cfg.splits)
        self.split_for = splitter(pipe)
        special = pipe.special_ids()
        self.frame = special.framing  # BOS and EOS, or EOS alone, around each document
        self.packers = {s: Packer(cfg.sequence_length, cfg.packing, whole_spans=mcfg is not None,
                                  split_long=mcfg is None or mcfg.long_spans == "split",
                                  frame_tokens=(mcfg.image_size // mcfg.patch_size) ** 2 if mcfg else 0,
                                  special=special) for s in self.splits}
        self.writers = {s: pipe.shard_writer(pipe.layout.task_shard_prefix(s, task), s) for s in self.splits}
        self.lineages = {s: TaskLineage(pipe.layout.task_lineage(s, task)) for s in self.splits}
        out = pipe.recipe.output
        self.docs_out = (PartedDocumentWriter(pipe.layout.documents, task, out.documents, out.part_bytes)
                         if out.documents != "none" else None)
        self.tally = Tally.of(self.splits)
        self.max_hash = read_json(pipe.mixture_path())["max_hash"] if cfg.max_records else {}
        self.media = None
        if mcfg is not None:
            self.media = MediaEncoder(self.tok, pipe.output, mcfg.encoders, mcfg.audio_sample_rate, mcfg.features())

    def add(self, c: DocumentColumns, docs: list[Document] | None = None) -> None:
        """Select, encode, count, pack and record one batch (``docs``: its Documents, for media)."""
        cfg = self.cfg
        need_ids = self.max_hash or cfg.mixture or len(self.splits) > 1 or self.docs_out is not None
        ids = c.docs["id"].to_pylist() if need_ids else []
        rows, copies = selected(ids, c, self.max_hash, cfg.mixture, self.seed)
        kept, all_ids, encodings, lengths = self._encode(c, rows, docs)
        rows, copies = rows[kept], copies[kept]
        split_at = split_numbers(ids, rows, c, self.splits, self.split_for)
        if self.docs_out is not None:
            self._write_documents(c, ids, rows, split_at)
        starts = np.cumsum(lengths) - lengths
        for k, s in enumerate(self.splits):
            order = np.repeat(np.flatnonzero(split_at == k), copies[split_at == k])  # into rows, copies repeated
            if not len(order):
                continue
            sizes = lengths[order] + self.frame
            self.tally.add(s, c, c.meta_index[rows[order]], sizes)
            if encodings is not None:
                names = [f"{docs[r].source} (document {docs[r].id})" for r in rows[order].tolist()]
                spans = self.packers[s].add_documents([encodings[i] for i in order.tolist()], names)
            else:
                same = len(order) == len(lengths) and bool((order == np.arange(len(order))).all())
                flat = all_ids if same else gather_segments(all_ids, starts[order], sizes - self.frame)
                spans = self.packers[s].add_flat(flat, sizes - self.frame)
            spans[:, 0] = rows[order][spans[:, 0]]
            self.lineages[s].add_columns(c.docs, c.metas, c.meta_index, spans)
            self.writers[s].add(self.packers[s].take_full())

    def _encode(self, c: DocumentColumns, rows: np.ndarray, docs: list[Document] | None
                ) -> tuple[np.ndarray, np.ndarray | None, list[list[int]] | None, np.ndarray]:
        """Which of ``rows`` are kept (positions), their ids and lengths: text as one flat array
        (``encode_flat``); with media, one id list per document (``MediaEncoder.encode``, which
        quarantines what cannot be decoded and drops a document left with nothing)."""
        if self.media is None:
            whole = len(rows) == len(c.texts)
            all_ids, lengths = encode_flat(self.tok, c.texts if whole else [c.texts[r] for r in rows.tolist()])
            return np.arange(len(rows)), all_ids, None, lengths
        assert docs is not None, "media batches carry their Documents"
        kept, encodings = self.media.encode([docs[r] for r in rows.tolist()], self.ctx.quarantine)
        lengths = np.fromiter((len(e) for e in encodings), np.int64, len(encodings))
        return np.asarray(kept, dtype=np.int64), None, encodings, lengths

    def _write_documents(self, c: DocumentColumns, ids: list[str], rows: np.ndarray, split_at: np.ndarray) -> None:
        """``output.documents``: each selected row once, its split in its metadata."""
        sources, offsets = c.docs["source"].to_pylist(), c.docs["offset"].to_pylist()
        for r, m, k in zip(rows.tolist(), c.meta_index[rows].tolist(), split_at.tolist(), strict=True):
            self.docs_out.write_record(ids[r], c.texts[r], sources[r], offsets[r], {**c.metas[m], "split": self.splits[k]})

    def finish(self, pipe: Pipeline, task: int, stats: list[StepStats], curated: LengthHistogram) -> ShardsResult:
        """Write what the packers hold, close every file; the task's result."""
        shards = {}
        for s in self.splits:
            self.writers[s].add(self.packers[s].finish())
            shards[s] = self.writers[s].close()
            self.lineages[s].close()
            if self.cfg.packing == "truncate":
                self.tally.counts[s]["truncated_tokens"] = self.packers[s].truncated_tokens
        t = self.tally
        return ShardsResult(
            finish_stats(stats), t.counts, dict(sorted(t.by_source.items())), dict(sorted(t.docs_by_source.items())),
            curated.counts, dict(sorted(t.languages.items())), dict(sorted(t.licenses.items())), shards=shards,
            media=self.media.result(self.packers.values(), pipe.output, task) if self.media is not None else None,
            documents=self.docs_out.close() if self.docs_out is not None else None)


@register_stage("shards")
class ShardsStage(PerInputStage):
    """Encode, pack and write one task's curated documents as shard parts (one file set per split)."""

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> ShardsResult:
        work = ShardTask(pipe, task, ctx)
        batch_chars = pipe.recipe.sharding.encode_batch_bytes
        curated = LengthHistogram()
        columns = pipe.final_columns(task, ctx, batch_chars) if work.media is None else None
        if columns is not None:
            batches, stats = columns
            for c in batches:
                curated.add_lengths(c.chars)
                with cyclic_gc_paused():
                    work.add(c)
        else:
            docs, stats = pipe.final_documents(task, ctx)
            for batch in document_batches(curated.counting(docs), batch_chars):
                work.add(columns_of(batch), batch)
        return work.finish(pipe, task, stats, curated)
