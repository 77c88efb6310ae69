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

Each kind of stage is a ``StageKind`` in ``corpusforge/stages/`` (one module per kind); this module
plans the stages and feeds them documents. ``run_task`` is the one function every executor calls:
it looks the stage's kind up and runs its task, a pure function of the recipe, the output folder
and the task, which is what makes outputs identical for any worker count.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from corpusforge.document import Document
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout
from corpusforge.maintain.erase import erased_ids
from corpusforge.media.stage import media_layout
from corpusforge.observe.stats import TIMING, StepStats, TaskContext, peak_rss_mb, reset_peak_rss
from corpusforge.recipe import Recipe, fingerprint_of
from corpusforge.remote import access_error
from corpusforge.shards.formats import get_format
from corpusforge.shards.writer import ShardWriter
from corpusforge.sources.base import TaskInput
from corpusforge.sources.manifest import reconcile_with_manifest
from corpusforge.stages import stage_kind
from corpusforge.stages.base import Stage, cached_encoder
from corpusforge.staging import DocumentColumns, read_document_columns, read_documents
from corpusforge.state import CompletionRecords
from corpusforge.step import CorpusStep, Step, run_step, timed
from corpusforge.tokenize.encoder import stored_name
from corpusforge.tokenize.special import SpecialIds

# ``shards/group_split.py`` reads the split helpers from here (they live in ``splits.py``).
__all__ = ["Pipeline", "Stage", "run_task"]


def _h(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


class Pipeline:
    """A recipe bound to an output folder: its steps, segments, stages and task keys."""

    def __init__(self, recipe: Recipe, output: Path, plan: list[TaskInput] | None = None):
        self.recipe, self.output = recipe, Path(output)
        self.layout = OutputLayout(self.output)
        self.work = self.layout.work
        self.fingerprint = recipe.fingerprint()
        self.sources = {s.source_name: s for s in recipe.build_sources()}
        self.segments: list[list[Step]] = [[]]
        self.boundaries: list[CorpusStep] = []
        for step in recipe.build_steps():
            self.segments[-1].append(step)
            if isinstance(step, CorpusStep):
                step.bind(self.layout.step_dir(step.name, len(self.boundaries)))
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
        """The run's stages in order; each kind's ``plan`` says how many tasks it has."""

        def stage(name: str, kind: str, segment: int = 0) -> Stage:
            return Stage(name, kind, stage_kind(kind).plan(self, segment), segment)

        out = [stage("curate", "curate")]
        for k, b in enumerate(self.boundaries):
            name = f"{b.name}_{k}" if len(self.boundaries) > 1 else b.name
            out.append(stage(name, "decide", k))
            if b.has_finalize():
                out.append(stage(f"{name}_finalize", "finalize", k))
            if self.segments[k + 1]:
                out.append(stage(f"curate_{k + 1}", "curate", k + 1))
        if self.recipe.embeddings is not None:
            out.append(stage("embeddings", "embeddings"))
        if not self.recipe.curate_only:
            out.append(stage("tokenizer", "tokenizer"))
        if self.recipe.sharding.max_records:
            out.append(stage("mixture", "mixture"))
        last = "documents" if self.recipe.curate_only else "shards"
        out += [stage(last, last), stage("index", "index")]
        return out

    def task_key(self, stage: Stage, task: int) -> str:
        """Completion key: the first stage depends on its own input only, later ones on all input."""
        if stage.name == "curate":
            return _h(self.fingerprint, stage.name, self.plan[task].identity())
        return _h(self.fingerprint, stage.name, [t.identity() for t in self.plan])

    def staged_path(self, segment: int, task: int) -> Path:
        return self.layout.staged(segment, task)

    # -- documents flowing into a task ------------------------------------------------------------

    def staged_after(self, k: int, task: int, ctx: TaskContext) -> Iterator[Document]:
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
            return self.through([], read_documents(self.staged_path(0, task)), ctx, "staged")
        k = len(self.boundaries) - 1
        if self.segments[k + 1]:
            return self.through([], read_documents(self.staged_path(k + 1, task)), ctx, "staged")
        docs = self.staged_after(k, task, ctx)
        stats = ctx.stats_for(self.boundaries[k])
        return timed(docs, stats), [stats]

    def through(
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
        tok = cached_encoder(str(self.layout.tokenizer(stored_name(self.recipe.tokenizer))))
        return tok.special.with_masked(self.recipe.sharding.mask_special)

    def media_layout(self, codebooks: dict[str, Any] | None = None) -> dict[str, Any]:
        """The joint text + media vocabulary of a multimodal run (after its tokenizer stage)."""
        tok = cached_encoder(str(self.layout.tokenizer(stored_name(self.recipe.tokenizer))))
        return media_layout(self.output, tok.vocab_size, codebooks)

    def mixture_path(self) -> Path:
        return self.layout.mixture


_PIPELINES: dict[tuple[str, str, str], Pipeline] = {}


def use_system_allocator() -> None:
    """Give Arrow the C library's allocator in a task process, unless ARROW_DEFAULT_MEMORY_POOL says
    otherwise: Arrow's default (mimalloc) keeps what a Parquet read freed for its own reuse, which
    other libraries (tokenizers, Python) cannot use; a shard task peaked 40 MB higher with it."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def run_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one task of one stage and leave its completion record. Called by every executor."""
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
    result = stage_kind(stage.kind).run_task(pipe, stage, task, ctx).to_record()
    ctx.flush()
    # The task's peak (from reset_peak_rss above, Linux; elsewhere the process's so far): memory per stage.
    result["peak_rss_mb"] = peak_rss_mb()
    result[TIMING] = [started, time.time()]  # a resumed run adds the time of the tasks done before it
    CompletionRecords(output, stage.name).write(task, payload["key"], result)
    return result
