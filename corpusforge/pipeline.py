"""From a recipe to stages and tasks, and the work of one task.

Steps are cut into segments at every corpus-wide step (``CorpusStep``). Stages, in order:

- ``curate``: per input task, read the source and run the first segment; stage the documents.
- for each corpus-wide step: its decide stage (per partition), its one-task ``<name>_finalize``
  stage if the step overrides ``CorpusStep.finalize``, then, if steps follow, a per-task
  stage ``curate_<k>`` that drops the decided rows and runs the next segment.
- ``embeddings`` (only with an ``embeddings`` section): per task, embed the curated documents.
- ``tokenizer``: train on the curated text (or load ``tokenizer.path``).
- ``mixture`` (only with ``sharding.max_records``): one task picks each capped source's sample.
- ``shards``: per task, drop the last decided rows, encode, pack, write shard parts.
- ``index``: name the shards, write ``shard_index.json`` and ``stats.json``.

A curate-only recipe (``tokenizer: null`` or ``output.shards: false``) has no tokenizer and
shards stages: ``documents`` writes each task's kept documents (``output.documents``) and their
lineage, and ``index`` writes ``documents_index.json`` and ``stats.json``.

``run_task`` is the one function every executor calls; it is a pure function of the recipe, the
output folder and the task, which is what makes outputs identical for any worker count.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import xxhash

from corpusforge.document import Document
from corpusforge.errors import CorpusforgeError
from corpusforge.observe.erase import erased_ids
from corpusforge.observe.histogram import LengthHistogram
from corpusforge.observe.lineage import TaskLineage, task_lineage_path
from corpusforge.observe.stats import MODIFIED_BY, TIMING, StepStats, TaskContext, peak_rss_mb, reset_peak_rss
from corpusforge.recipe import Recipe, fingerprint_of
from corpusforge.remote import access_error
from corpusforge.shards.formats import get_format
from corpusforge.shards.group_split import splitter
from corpusforge.shards.packer import Packer, gather_segments
from corpusforge.shards.writer import ShardWriter
from corpusforge.sources.base import TaskInput
from corpusforge.sources.manifest import reconcile_with_manifest
from corpusforge.staging import (
    DocumentColumns,
    DocumentWriter,
    PartedDocumentWriter,
    read_document_columns,
    read_documents,
    write_documents_lineage,
)
from corpusforge.state import atomic_write_json, read_json
from corpusforge.step import CorpusStep, Step, run_step, timed
from corpusforge.tokenize.encoder import encode_flat, load_encoder, stored_name
from corpusforge.tokenize.special import SpecialIds


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str  # "curate" | "decide" | "finalize" | "embeddings" | "tokenizer" | "shards" | "documents" | "index"
    n_tasks: int
    segment: int = 0  # curate: which segment of steps; decide: which corpus-wide step


def _h(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


class Pipeline:
    """A recipe bound to an output folder: its steps, segments, stages and task keys."""

    def __init__(self, recipe: Recipe, output: Path, plan: list[TaskInput] | None = None):
        self.recipe, self.output = recipe, Path(output)
        self.work = self.output / "_work"
        self.fingerprint = recipe.fingerprint()
        self.sources = {s.source_name: s for s in recipe.build_sources()}
        self.segments: list[list[Step]] = [[]]
        self.boundaries: list[CorpusStep] = []
        for step in recipe.build_steps():
            self.segments[-1].append(step)
            if isinstance(step, CorpusStep):
                step.bind(self.work / f"{step.name}_{len(self.boundaries)}")
                self.boundaries.append(step)
                self.segments.append([])
        self._plan = plan
        self.erased = erased_ids(self.output)  # documents `corpusforge erase` removed stay out of re-runs

    @cached_property
    def shards_fingerprint(self) -> str:
        """The recipe hash the shards carry: this recipe's, except in a tokenize-only run (one
        ``corpusforge`` source, ``steps: []``), where it is that of the one-shot recipe the run
        equals: the curate recipe with this one's seed, tokenizer, sharding, output, media and
        embeddings. Equal inputs then give byte-identical shards either way."""
        (src, *more) = self.sources.values()
        upstream = None if more or self.recipe.steps else getattr(src, "upstream_recipe", lambda: None)()
        if upstream is None:
            return self.fingerprint
        mine = self.recipe.model_dump(mode="json")
        both = {**upstream, **{k: mine[k] for k in ("seed", "tokenizer", "sharding", "output", "media", "embeddings")}}
        try:
            return fingerprint_of(both)
        except (KeyError, TypeError, AttributeError):  # a recipe.yaml of another version or hand-edited
            return self.fingerprint

    # -- plan ------------------------------------------------------------------------------------

    @property
    def plan(self) -> list[TaskInput]:
        if self._plan is None:
            tasks: list[TaskInput] = []
            for name, src in self.sources.items():
                try:
                    tasks.extend(src.plan(self.recipe.executor.task_bytes))
                except Exception as exc:  # a store, endpoint or hub out of reach: one line naming the source
                    paths = getattr(src, "paths", None)
                    where = f"source {name!r}" + (f" ({', '.join(map(str, paths))})" if paths else "")
                    if isinstance(exc, CorpusforgeError) or (err := access_error(exc, where)) is None:
                        raise
                    raise err from None
            self._plan = reconcile_with_manifest(self.output, tasks, self.sources)
        return self._plan

    def stages(self) -> list[Stage]:
        n = len(self.plan)
        out = [Stage("curate", "curate", n, 0)]
        for k, b in enumerate(self.boundaries):
            name = f"{b.name}_{k}" if len(self.boundaries) > 1 else b.name
            out.append(Stage(name, "decide", b.partitions(), k))
            if b.has_finalize():
                out.append(Stage(f"{name}_finalize", "finalize", 1, k))
            if self.segments[k + 1]:
                out.append(Stage(f"curate_{k + 1}", "curate", n, k + 1))
        if self.recipe.embeddings is not None:
            out.append(Stage("embeddings", "embeddings", n))
        if not self.recipe.curate_only:
            out.append(Stage("tokenizer", "tokenizer", 1))
        if self.recipe.sharding.max_records:
            out.append(Stage("mixture", "mixture", 1))
        last = "documents" if self.recipe.curate_only else "shards"
        out += [Stage(last, last, n), Stage("index", "index", 1)]
        return out

    def task_key(self, stage: Stage, task: int) -> str:
        """Completion key: the first stage depends on its own input only, later ones on all input."""
        if stage.name == "curate":
            return _h(self.fingerprint, stage.name, self.plan[task].identity())
        return _h(self.fingerprint, stage.name, [t.identity() for t in self.plan])

    def staged_path(self, segment: int, task: int) -> Path:
        name = "curate" if segment == 0 else f"curate_{segment}"
        return self.work / name / f"task_{task:06d}.parquet"

    # -- documents flowing into a task ------------------------------------------------------------

    def _staged_after(self, k: int, task: int, ctx: TaskContext) -> Iterator[Document]:
        """Documents of the staged output that precedes corpus-wide step ``k``, minus its removals."""
        boundary = self.boundaries[k]  # the last step of segment k, whose stage staged the rows
        removed = boundary.removed(task)
        stats = ctx.stats_for(boundary)
        for row, doc in enumerate(read_documents(self.staged_path(k, task))):
            if doc.id in self.erased:
                continue
            stats.docs_in += 1
            stats.chars_in += len(doc.text)
            reason = removed.get(row)
            if reason is None:
                yield doc
            else:
                ctx.drop(boundary, doc, reason)

    def without_erased(self, docs: Iterator[Document]) -> Iterator[Document]:
        return (d for d in docs if d.id not in self.erased) if self.erased else docs

    def final_documents(self, task: int, ctx: TaskContext) -> tuple[Iterator[Document], list[StepStats]]:
        """The curated documents of ``task`` as the tokenizer and shard stages see them."""
        docs, stats = self._final_documents(task, ctx)
        return self.without_erased(docs), stats

    def final_columns(self, task: int, ctx: TaskContext, batch_chars: int
                      ) -> tuple[Iterator[DocumentColumns], list[StepStats]] | None:
        """``final_documents`` as column batches (``read_document_columns``), for a shard stage
        that needs no Document objects; None where documents were erased."""
        if self.erased:
            return None
        k = len(self.boundaries) - 1
        if not self.boundaries or self.segments[k + 1]:
            return self._timed_columns(read_document_columns(self.staged_path(k + 1, task), batch_chars),
                                       StepStats("staged"))
        boundary = self.boundaries[k]
        stats = ctx.stats_for(boundary)

        def drop(doc: Document, reason: str) -> None:
            stats.docs_in += 1
            stats.chars_in += len(doc.text)
            ctx.drop(boundary, doc, reason)

        cols = read_document_columns(self.staged_path(k, task), batch_chars, boundary.removed(task), drop)
        return self._timed_columns(cols, stats, inputs=True)

    @staticmethod
    def _timed_columns(cols: Iterator[DocumentColumns], stats: StepStats, inputs: bool = False
                       ) -> tuple[Iterator[DocumentColumns], list[StepStats]]:
        """``timed`` for column batches; with ``inputs`` the kept rows count as the step's input too
        (its dropped rows are counted where they are dropped)."""

        def gen() -> Iterator[DocumentColumns]:
            clock = time.perf_counter
            t0 = clock()
            for c in cols:
                stats.seconds_cum += clock() - t0
                chars = int(c.chars.sum())
                stats.docs_out += len(c.texts)
                stats.chars_out += chars
                if inputs:
                    stats.docs_in += len(c.texts)
                    stats.chars_in += chars
                yield c
                t0 = clock()
            stats.seconds_cum += clock() - t0

        return gen(), [stats]

    def _final_documents(self, task: int, ctx: TaskContext) -> tuple[Iterator[Document], list[StepStats]]:
        if not self.boundaries:
            return self._through([], read_documents(self.staged_path(0, task)), ctx, "staged")
        k = len(self.boundaries) - 1
        if self.segments[k + 1]:
            return self._through([], read_documents(self.staged_path(k + 1, task)), ctx, "staged")
        docs = self._staged_after(k, task, ctx)
        stats = ctx.stats_for(self.boundaries[k])
        return timed(docs, stats), [stats]

    def _through(
        self, steps: list[Step], docs: Iterator[Document], ctx: TaskContext, first: str, first_stats: StepStats | None = None
    ) -> tuple[Iterator[Document], list[StepStats]]:
        head = first_stats or StepStats(first)
        chain: Iterator[Document] = timed(docs, head)
        all_stats = [head]
        for step in steps:
            step.setup(ctx)
            s = ctx.stats_for(step)
            chain = timed(run_step(step, chain, ctx), s)
            all_stats.append(s)
        return chain, all_stats

    # -- tasks -----------------------------------------------------------------------------------

    def run_curate(self, stage: Stage, task: int, ctx: TaskContext) -> dict[str, Any]:
        seg = stage.segment
        lengths = LengthHistogram()
        if seg == 0:
            ti = self.plan[task]
            read = lengths.counting(self.without_erased(self.sources[ti.source].read(ti, ctx)))
            docs, stats = self._through(self.segments[0], read, ctx, "read")
        else:
            boundary = self.boundaries[seg - 1]
            docs, stats = self._through(self.segments[seg], self._staged_after(seg - 1, task, ctx), ctx, "",
                                        ctx.stats_for(boundary))
        writer = DocumentWriter(self.staged_path(seg, task))
        try:
            for doc in docs:
                writer.write(doc)
        except BaseException:
            writer.abort()
            raise
        writer.close()
        if seg == 0:
            summary = quarantine_summary(ctx)
            stats[0].counts.update(ctx.stats_for(self.sources[ti.source]).counts)  # what the source skipped
            stats[0].docs_in = stats[0].docs_out + summary["quarantined"]
            return {"steps": finish_stats(stats), **summary, "lengths_read": lengths.counts}
        return {"steps": finish_stats(stats), **quarantine_summary(ctx)}

    def shard_writer(self, prefix: Path, split: str) -> ShardWriter:
        """A writer of ``split``'s shards as the recipe's sharding section asks."""
        cfg = self.recipe.sharding
        special = self.special_ids()
        meta = {"format": "corpusforge", "sequence_length": str(cfg.sequence_length),
                "recipe_sha256": self.shards_fingerprint, "split": split, "pad_id": str(special.pad)}
        layout = None
        if self.recipe.media is not None:
            layout = self.media_layout()
            meta["vocab_size"] = str(layout["vocab_size"])
        return ShardWriter(prefix, cfg.sequence_length, cfg.max_shard_bytes, meta, cfg.position_ids, cfg.document_ids,
                           get_format(cfg.format), cfg.compression, cfg.max_tokens_per_shard, layout, special,
                           token_dtype=cfg.token_dtype)

    def special_ids(self) -> SpecialIds:
        """The run's special ids (after its tokenizer stage), labels masked as ``sharding.mask_special`` says."""
        tok = cached_encoder(str(self.output / stored_name(self.recipe.tokenizer)))
        return tok.special.with_masked(self.recipe.sharding.mask_special)

    def media_layout(self, codebooks: dict[str, Any] | None = None) -> dict[str, Any]:
        """The joint text + media vocabulary of a multimodal run (after its tokenizer stage)."""
        from corpusforge.media.stage import media_layout

        tok = cached_encoder(str(self.output / stored_name(self.recipe.tokenizer)))
        return media_layout(self.output, tok.vocab_size, codebooks)

    def mixture_path(self) -> Path:
        return self.work / "mixture.json"

    def run_mixture(self, ctx: TaskContext) -> dict[str, Any]:
        """Per capped source, the largest sample hash that is kept: its ``max_records`` documents
        with the smallest seeded hash of their id, so the sample is exact and independent of tasks
        and workers. Holds at most ``max_records`` hashes per source plus one task's."""
        caps = self.recipe.sharding.max_records
        seed = self.recipe.seed
        best: dict[str, np.ndarray] = {}
        for task in range(len(self.plan)):
            docs, _ = self.final_documents(task, ctx)
            found: dict[str, list[int]] = {}
            for doc in docs:
                src = doc.metadata.get("source_name", "")
                if src in caps:
                    found.setdefault(src, []).append(sample_hash(doc.id, seed))
            for src, hashes in found.items():
                both = np.concatenate([best.get(src, np.empty(0, np.uint64)), np.array(hashes, dtype=np.uint64)])
                k = caps[src]
                best[src] = np.partition(both, k - 1)[:k] if 0 < k < len(both) else (both if k else both[:0])
        result = {"max_hash": {src: (int(best[src].max()) if src in best and len(best[src]) else -1) for src in caps},
                  "available": {src: int(len(best.get(src, ()))) for src in caps}}
        atomic_write_json(self.mixture_path(), result)
        return result

    def run_shards(self, task: int, ctx: TaskContext) -> dict[str, Any]:
        cfg = self.recipe.sharding
        tok = cached_encoder(str(self.output / stored_name(self.recipe.tokenizer)))
        splits = list(cfg.splits)
        split_for = splitter(self)
        mcfg = self.recipe.media
        special = self.special_ids()
        frame = special.framing  # BOS and EOS, or EOS alone, around each document
        packers = {s: Packer(cfg.sequence_length, cfg.packing, whole_spans=mcfg is not None,
                             split_long=mcfg is None or mcfg.long_spans == "split",
                             frame_tokens=(mcfg.image_size // mcfg.patch_size) ** 2 if mcfg else 0,
                             special=special) for s in splits}
        writers = {s: self.shard_writer(self.work / "shards" / s / f"t{task:06d}", s) for s in splits}
        lineages = {s: TaskLineage(task_lineage_path(self.work, s, task)) for s in splits}
        docs_out = None
        if self.recipe.output.documents != "none":
            docs_out = PartedDocumentWriter(self.output / "documents", task, self.recipe.output.documents,
                                            self.recipe.output.part_bytes)
        counts = {s: {"documents": 0, "tokens": 0} for s in splits}
        by_source: Counter[str] = Counter()
        docs_by_source: Counter[str] = Counter()
        # For the data card: a few distinct values each, so bounded whatever the corpus size.
        languages: Counter[str] = Counter()
        licenses: Counter[str] = Counter()
        curated = LengthHistogram()
        seed = self.recipe.seed
        max_hash = read_json(self.mixture_path())["max_hash"] if cfg.max_records else {}
        media = None
        if self.recipe.media is not None:
            from corpusforge.media.stage import MediaEncoder

            media = MediaEncoder(tok, self.output, self.recipe.media.encoders, self.recipe.media.audio_sample_rate,
                                 self.recipe.media.features())

        def flush(batch: list[Document]) -> None:
            if max_hash:
                batch = [d for d in batch if sample_hash(d.id, seed) <= max_hash.get(d.metadata.get("source_name", ""),
                                                                                       _NO_CAP)]
            copies = [1] * len(batch)
            if cfg.mixture:
                copies = [mixture_copies(d.id, seed, cfg.mixture.get(d.metadata.get("source_name", ""), 1.0))
                          for d in batch]
                batch = [d for d, c in zip(batch, copies, strict=True) if c]
                copies = [c for c in copies if c]
            if media is None:
                flat, n = encode_flat(tok, [d.text for d in batch])
                encodings = np.split(flat, np.cumsum(n)[:-1]) if len(n) else []
            else:
                keep, encodings = media.encode(batch, ctx.quarantine)
                batch, copies = [batch[i] for i in keep], [copies[i] for i in keep]
            per_split: dict[str, list[list[int]]] = {s: [] for s in splits}
            split_docs: dict[str, list[Document]] = {s: [] for s in splits}
            for doc, ids, n in zip(batch, encodings, copies, strict=True):
                split = split_for(doc.id, doc.metadata)
                per_split[split].extend([ids] * n)
                split_docs[split].extend([doc] * n)
                counts[split]["documents"] += n
                counts[split]["tokens"] += n * (len(ids) + frame)
                by_source[doc.metadata.get("source_name", "")] += n * (len(ids) + frame)
                docs_by_source[doc.metadata.get("source_name", "")] += n
                if "language" in doc.metadata:
                    languages[str(doc.metadata["language"])] += n
                if "license" in doc.metadata:
                    licenses[str(doc.metadata["license"])] += n
                if docs_out is not None:
                    doc.metadata["split"] = split
                    docs_out.write(doc)
            for s, ids in per_split.items():
                if ids:
                    names = [f"{d.source} (document {d.id})" for d in split_docs[s]] if media else None
                    lineages[s].add(split_docs[s], packers[s].add_documents(ids, names))
                    writers[s].add(packers[s].take_full())

        def flush_columns(c: DocumentColumns) -> None:
            """``flush`` for documents as columns: the same outputs, per-batch array work instead of per-document."""
            rows = np.arange(len(c.texts))
            doc_ids = c.docs["id"].to_pylist() if max_hash or cfg.mixture or len(splits) > 1 else []
            if max_hash:
                caps = [max_hash.get(m.get("source_name", ""), _NO_CAP) for m in c.metas]
                rows = rows[np.fromiter((sample_hash(i, seed) <= caps[m] for i, m in
                                         zip(doc_ids, c.meta_index.tolist(), strict=True)), bool, len(doc_ids))]
            copies = np.ones(len(rows), dtype=np.int64)
            if cfg.mixture:
                weights = [cfg.mixture.get(m.get("source_name", ""), 1.0) for m in c.metas]
                copies = np.fromiter((mixture_copies(doc_ids[r], seed, weights[c.meta_index[r]]) for r in rows.tolist()),
                                     np.int64, len(rows))
                rows, copies = rows[copies > 0], copies[copies > 0]
            whole = len(rows) == len(c.texts)
            all_ids, lengths = encode_flat(tok, c.texts if whole else [c.texts[r] for r in rows.tolist()])
            starts = np.cumsum(lengths) - lengths
            if len(splits) == 1:
                split_at = np.zeros(len(rows), dtype=np.int64)
            else:
                number = {name: k for k, name in enumerate(splits)}
                split_at = np.fromiter((number[split_for(doc_ids[r], c.metas[c.meta_index[r]])]
                                        for r in rows.tolist()), np.int64, len(rows))
            for k, s in enumerate(splits):
                order = np.repeat(np.flatnonzero(split_at == k), copies[split_at == k])  # into rows, copies repeated
                if not len(order):
                    continue
                sizes = lengths[order] + frame
                counts[s]["documents"] += len(order)
                counts[s]["tokens"] += int(sizes.sum())
                meta = c.meta_index[rows[order]]
                tokens_by_meta = np.bincount(meta, weights=sizes, minlength=len(c.metas))
                for j, n in enumerate(np.bincount(meta, minlength=len(c.metas)).tolist()):
                    if n:
                        m = c.metas[j]
                        by_source[m.get("source_name", "")] += int(tokens_by_meta[j])
                        docs_by_source[m.get("source_name", "")] += n
                        if "language" in m:
                            languages[str(m["language"])] += n
                        if "license" in m:
                            licenses[str(m["license"])] += n
                same = len(order) == len(lengths) and bool((order == np.arange(len(order))).all())
                flat = all_ids if same else gather_segments(all_ids, starts[order], sizes - frame)
                spans = packers[s].add_flat(flat, sizes - frame)
                spans[:, 0] = rows[order][spans[:, 0]]
                lineages[s].add_columns(c.docs, c.metas, c.meta_index, spans)
                writers[s].add(packers[s].take_full())

        columns = self.final_columns(task, ctx, cfg.encode_batch_bytes) if media is None and docs_out is None else None
        if columns is not None:
            batches, stats = columns
            for c in batches:
                curated.add_lengths(c.chars)
                with cyclic_gc_paused():
                    flush_columns(c)
            docs: Iterator[Document] = iter(())
        else:
            docs, stats = self.final_documents(task, ctx)
        batch: list[Document] = []
        size = 0
        for doc in curated.counting(docs):
            batch.append(doc)
            size += len(doc.text)
            if size >= cfg.encode_batch_bytes:
                flush(batch)
                batch, size = [], 0
        if batch:
            flush(batch)
        shards = {}
        for s in splits:
            writers[s].add(packers[s].finish())
            shards[s] = writers[s].close()
            lineages[s].close()
            if cfg.packing == "truncate":
                counts[s]["truncated_tokens"] = packers[s].truncated_tokens
        if docs_out is not None:
            result_docs = docs_out.close()
        result = {"steps": finish_stats(stats), "shards": shards, "counts": counts,
                  "tokens_by_source": dict(sorted(by_source.items())),
                  "documents_by_source": dict(sorted(docs_by_source.items())), "lengths_curated": curated.counts,
                  "languages": dict(sorted(languages.items())), "licenses": dict(sorted(licenses.items()))}
        if media is not None:
            result["media"] = media.result(packers.values(), self.output, task)
        if docs_out is not None:
            result["documents"] = result_docs
        return result

    def _final_records(self, task: int, ctx: TaskContext
                       ) -> tuple[Iterator[tuple[str, str, str, int, dict[str, Any]]], list[StepStats]]:
        """``final_documents`` as ``(id, text, source, offset, metadata)`` tuples, read as column
        batches where no document was erased (no ``Document`` per row); metadata dicts are shared
        between rows: copy before changing one."""
        columns = self.final_columns(task, ctx, 4 << 20)
        if columns is None:
            docs, stats = self.final_documents(task, ctx)
            return ((d.id, d.text, d.source, d.offset, d.metadata) for d in docs), stats
        batches, stats = columns

        def gen() -> Iterator[tuple[str, str, str, int, dict[str, Any]]]:
            for c in batches:
                metas = [c.metas[j] for j in c.meta_index.tolist()]
                yield from zip(c.docs["id"].to_pylist(), c.texts, c.docs["source"].to_pylist(),
                               c.docs["offset"].to_pylist(), metas, strict=True)

        return gen(), stats

    def run_documents(self, task: int, ctx: TaskContext) -> dict[str, Any]:
        """Curate-only: write ``task``'s kept documents to ``documents/`` parts and their lineage.
        The documents, their order and bytes are those a shard run of the recipe writes with
        ``output.documents``: the same ``max_records`` and ``mixture`` selection (a document once,
        whatever its weight), and each one's split in its metadata."""
        cfg = self.recipe.sharding
        splits, seed, split_for = list(cfg.splits), self.recipe.seed, splitter(self)
        max_hash = read_json(self.mixture_path())["max_hash"] if cfg.max_records else {}
        out = self.recipe.output
        writer = PartedDocumentWriter(self.output / "documents", task, out.documents, out.part_bytes)
        counts = {s: {"documents": 0, "tokens": 0} for s in splits}
        docs_by_source: Counter[str] = Counter()
        languages: Counter[str] = Counter()
        licenses: Counter[str] = Counter()
        curated = LengthHistogram()
        lineage: dict[str, list[Any]] = {k: [] for k in ("shard", "row", "doc_id", "source_name", "source_uri",
                                                          "offset", "modified_by")}
        records, stats = self._final_records(task, ctx)
        try:
            for doc_id, text, source, offset, meta in records:
                name = meta.get("source_name", "")
                if max_hash and sample_hash(doc_id, seed) > max_hash.get(name, _NO_CAP):
                    continue
                if cfg.mixture and not mixture_copies(doc_id, seed, cfg.mixture.get(name, 1.0)):
                    continue
                split = split_for(doc_id, meta)
                meta = {**meta, "split": split}
                part, row = writer.write_record(doc_id, text, source, offset, meta)
                lineage["shard"].append(part)
                lineage["row"].append(row)
                counts[split]["documents"] += 1
                docs_by_source[name] += 1
                curated.add(len(text))
                if "language" in meta:
                    languages[str(meta["language"])] += 1
                if "license" in meta:
                    licenses[str(meta["license"])] += 1
                lineage["doc_id"].append(doc_id)
                lineage["source_name"].append(name)
                lineage["source_uri"].append(source)
                lineage["offset"].append(offset)
                lineage["modified_by"].append(list(meta.get(MODIFIED_BY, ())))
        except BaseException:
            writer.abort()
            raise
        parts = writer.close()
        write_documents_lineage(self.output, task, lineage)
        return {"steps": finish_stats(stats), "documents": parts, "counts": counts, "tokens_by_source": {},
                "documents_by_source": dict(sorted(docs_by_source.items())), "lengths_curated": curated.counts,
                "languages": dict(sorted(languages.items())), "licenses": dict(sorted(licenses.items()))}


def finish_stats(stats: list[StepStats]) -> list[dict[str, Any]]:
    """Per-step dicts with own seconds (cumulative minus upstream) and docs_in from upstream."""
    out = []
    prev_cum, prev = 0.0, None
    for s in stats:
        s.seconds = max(0.0, s.seconds_cum - prev_cum)
        prev_cum = s.seconds_cum
        if prev is not None:
            s.docs_in, s.chars_in = prev.docs_out, prev.chars_out
        prev = s
        out.append(s.to_dict())
    return out


def quarantine_summary(ctx: TaskContext) -> dict[str, Any]:
    """Quarantine entries by reason; ``quarantined`` counts those that cost a document (not a refused
    media reference of a document that was kept)."""
    reasons = Counter(_reason_kind(q["reason"]) for q in ctx.quarantined)
    lost = sum(not q.get("document_kept") for q in ctx.quarantined)
    return {"quarantined": lost, "quarantine_reasons": dict(sorted(reasons.items()))}


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0].split(" (")[0].split(" at byte")[0]


def split_thresholds(splits: dict[str, float]) -> list[float]:
    acc, cuts = 0.0, []
    for ratio in splits.values():
        acc += ratio
        cuts.append(acc)
    cuts[-1] = 1.0
    return cuts


def split_of(doc_id: str, seed: int, names: list[str], cuts: list[float]) -> str:
    """The split of a document: a pure function of its id and the seed."""
    if len(names) == 1:
        return names[0]
    u = xxhash.xxh3_64_intdigest(doc_id.encode(), seed=seed & 0xFFFFFFFFFFFFFFFF) / 2.0**64
    for name, cut in zip(names, cuts, strict=True):
        if u < cut:
            return name
    return names[-1]


def mixture_copies(doc_id: str, seed: int, weight: float) -> int:
    """How often a document goes into the shards under mixture ``weight``: ``floor(weight)``
    times, plus once more with probability ``weight - floor(weight)``, decided by its id."""
    whole = int(weight)
    u = xxhash.xxh3_64_intdigest(doc_id.encode(), seed=(seed + 1) & 0xFFFFFFFFFFFFFFFF) / 2.0**64
    return whole + (u < weight - whole)


_NO_CAP = 1 << 64  # above every 64-bit hash: sources without a cap keep every document


def sample_hash(doc_id: str, seed: int) -> int:
    """The key ``max_records`` samples by: the smallest hashes of a source's ids are kept."""
    return xxhash.xxh3_64_intdigest(doc_id.encode(), seed=(seed + 2) & 0xFFFFFFFFFFFFFFFF)


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


@lru_cache(maxsize=4)
def cached_encoder(path: str) -> Any:
    return load_encoder(path)


_PIPELINES: dict[tuple[str, str, str], Pipeline] = {}


def use_system_allocator() -> None:
    """Give Arrow the C library's allocator in a task process, unless ARROW_DEFAULT_MEMORY_POOL says
    otherwise: Arrow's default (mimalloc) keeps what a Parquet read freed for its own reuse, which
    other libraries (tokenizers, Python) cannot use; a shard task peaked 40 MB higher with it."""
    import pyarrow as pa

    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def run_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one task of one stage and leave its completion record. Called by every executor."""
    from corpusforge.recipe import Recipe
    from corpusforge.state import CompletionRecords

    reset_peak_rss()  # the task's own peak: a reused worker's earlier tasks do not count
    use_system_allocator()
    output = Path(payload["output"])
    # The plan is part of the key: a re-run with the same recipe and output (incremental input)
    # must not reuse a pipeline cached in this process with the previous plan.
    key = (payload["fingerprint"], str(output), _h(payload["plan"]))
    pipe = _PIPELINES.get(key)
    if pipe is None:
        recipe = Recipe.model_validate(payload["recipe"])
        plan = [TaskInput.from_dict(t) for t in payload["plan"]]
        pipe = _PIPELINES[key] = Pipeline(recipe, output, plan)
    stage = Stage(**payload["stage"])
    task = payload["task"]
    started = time.time()
    ctx = TaskContext(stage.name, task, output, pipe.recipe.seed, pipe.recipe.output.audit)
    if stage.kind == "curate":
        result = pipe.run_curate(stage, task, ctx)
    elif stage.kind == "decide":
        result = pipe.boundaries[stage.segment].decide(task, len(pipe.plan))
    elif stage.kind == "finalize":
        result = pipe.boundaries[stage.segment].finalize(len(pipe.plan))
    elif stage.kind == "shards":
        result = pipe.run_shards(task, ctx)
    elif stage.kind == "documents":
        result = pipe.run_documents(task, ctx)
    elif stage.kind == "mixture":
        result = pipe.run_mixture(ctx)
    elif stage.kind == "embeddings":
        from corpusforge.embeddings.stage import run_embeddings_task

        result = run_embeddings_task(pipe, task, ctx)
    else:
        raise ValueError(f"stage kind {stage.kind!r} does not run as tasks")
    ctx.flush()
    # The task's peak (from reset_peak_rss above, Linux; elsewhere the process's so far): memory per stage.
    result["peak_rss_mb"] = peak_rss_mb()
    result[TIMING] = [started, time.time()]  # a resumed run adds the time of the tasks done before it
    CompletionRecords(output, stage.name).write(task, payload["key"], result)
    return result
