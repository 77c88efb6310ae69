"""The ``documents`` stage of a curate-only recipe: per task, write the kept documents to
``documents/`` parts and their lineage, selected and split as a shard run selects them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from corpusforge.observe.histogram import LengthHistogram
from corpusforge.observe.stats import MODIFIED_BY, StepStats, TaskContext
from corpusforge.shards.group_split import splitter
from corpusforge.stages.base import PerInputStage, Stage, finish_stats, register_stage
from corpusforge.stages.shards import ShardsResult, columns_of, document_batches, selected, split_numbers
from corpusforge.staging import DocumentColumns, PartedDocumentWriter, write_documents_lineage
from corpusforge.state import read_json

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline

_BATCH_CHARS = 4 << 20  # characters of staged text read as one column batch


def final_batches(pipe: Pipeline, task: int, ctx: TaskContext) -> tuple[Iterator[DocumentColumns], list[StepStats]]:
    """``task``'s final documents as column batches: read as columns where no document was erased,
    else Document batches converted once."""
    columns = pipe.final_columns(task, ctx, _BATCH_CHARS)
    if columns is not None:
        return columns
    docs, stats = pipe.final_documents(task, ctx)
    return (columns_of(b) for b in document_batches(docs, _BATCH_CHARS)), stats


@register_stage("documents")
class DocumentsStage(PerInputStage):
    """Curate-only: the documents, their order and bytes are those a shard run of the recipe writes
    with ``output.documents``: the same ``max_records`` and ``mixture`` selection (a document once,
    whatever its weight), and each one's split in its metadata."""

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> ShardsResult:
        cfg = pipe.recipe.sharding
        splits, seed, split_for = list(cfg.splits), pipe.recipe.seed, splitter(pipe)
        max_hash = read_json(pipe.mixture_path())["max_hash"] if cfg.max_records else {}
        out = pipe.recipe.output
        writer = PartedDocumentWriter(pipe.layout.documents, task, out.documents, out.part_bytes)
        counts = {s: {"documents": 0, "tokens": 0} for s in splits}
        docs_by_source: Counter[str] = Counter()
        languages: Counter[str] = Counter()
        licenses: Counter[str] = Counter()
        curated = LengthHistogram()
        lineage: dict[str, list[Any]] = {k: [] for k in ("shard", "row", "doc_id", "source_name", "source_uri",
                                                          "offset", "modified_by")}
        batches, stats = final_batches(pipe, task, ctx)
        try:
            for c in batches:
                ids, sources, offsets = (c.docs[k].to_pylist() for k in ("id", "source", "offset"))
                rows, _ = selected(ids, c, max_hash, cfg.mixture, seed)
                curated.add_lengths(c.chars[rows])
                for r, m, k in zip(rows.tolist(), c.meta_index[rows].tolist(),
                                   split_numbers(ids, rows, c, splits, split_for).tolist(), strict=True):
                    meta = {**c.metas[m], "split": splits[k]}
                    name = meta.get("source_name", "")
                    part, row = writer.write_record(ids[r], c.texts[r], sources[r], offsets[r], meta)
                    counts[splits[k]]["documents"] += 1
                    docs_by_source[name] += 1
                    if "language" in meta:
                        languages[str(meta["language"])] += 1
                    if "license" in meta:
                        licenses[str(meta["license"])] += 1
                    for key, value in (("shard", part), ("row", row), ("doc_id", ids[r]), ("source_name", name),
                                       ("source_uri", sources[r]), ("offset", offsets[r]),
                                       ("modified_by", list(meta.get(MODIFIED_BY, ())))):
                        lineage[key].append(value)
        except BaseException:
            writer.abort()
            raise
        parts = writer.close()
        write_documents_lineage(pipe.output, task, lineage)
        return ShardsResult(finish_stats(stats), counts, {}, dict(sorted(docs_by_source.items())), curated.counts,
                            dict(sorted(languages.items())), dict(sorted(licenses.items())), documents=parts)
