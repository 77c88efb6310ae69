"""The ``index`` stage, in the driver: name the shards, write ``shard_index.json``, the lineage,
``version.json`` and ``stats.json``; for a curate-only run, ``documents_index.json`` instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
from rich.console import Console

from corpusforge.errors import CorpusforgeError
from corpusforge.maintain.version import write_version
from corpusforge.observe.lineage import finalize_lineage, read_lineage
from corpusforge.shards.index import finalize_shards
from corpusforge.shards.shuffle import shuffle_order, shuffle_shards
from corpusforge.stages.base import DriverRun, Stage, StageBase, register_stage
from corpusforge.state import CompletionRecords, atomic_write_json
from corpusforge.tokenize.encoder import HF_NAME

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline


@dataclass
class IndexResult:
    """The index stage's record: the output's totals (shards, rows, tokens per split; or parts,
    documents and bytes of a curate-only run)."""

    totals: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        return {"totals": self.totals}


@register_stage("index")
class IndexStage(StageBase):
    """Index what the last stage wrote (shards, or a curate-only run's documents) and write the
    run's stats; a record whose index and stats files are still there is reused."""

    in_driver = True
    writes_in_driver = True

    def run_driver(self, run: DriverRun, stage: Stage, records: CompletionRecords) -> dict[str, Any]:
        index = documents_index if run.pipe.recipe.curate_only else shards_index
        return index(run.pipe, records, stage, run.results, run.stats(), run.console)


def shards_index(
    pipe: Pipeline,
    records: CompletionRecords,
    stage: Stage,
    results: dict[str, list[dict[str, Any]]],
    stats: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """The shard run's index: ``shard_index.json`` (shards numbered per split, shuffled when the
    recipe asks), the final lineage, ``version.json`` and ``stats.json``."""
    key = pipe.task_key(stage, 0)
    rec = records.done(0, key)
    if rec is not None and pipe.layout.index.exists() and pipe.layout.stats.exists():
        return rec
    cfg = pipe.recipe.sharding
    header = shard_header(pipe, results, stats)
    per_task = [r["shards"] for r in results["shards"]]
    task_rows = {s: [sum(p["samples"] for p in t.get(s, [])) for t in per_task] for s in cfg.splits}
    if cfg.shuffle:
        per_task = shuffle_shards(per_task, list(cfg.splits), pipe.recipe.seed, cfg.sequence_length,
                                  lambda split: pipe.shard_writer(pipe.layout.shuffled_prefix(split), split))
        header["shuffled"] = True
    index = finalize_shards(pipe.output, per_task, list(cfg.splits), header)
    order = {s: shuffle_order(pipe.recipe.seed, sum(n)) for s, n in task_rows.items()} if cfg.shuffle else None
    finalize_lineage(pipe.output, pipe.work, len(results["shards"]), task_rows, index, order)
    write_version(pipe.output)
    stats["shards"] = index["totals"]
    stats["ids"] = {"duplicated": duplicate_ids(pipe, console)}
    atomic_write_json(pipe.layout.stats, stats)
    result = IndexResult(index["totals"]).to_record()
    records.write(0, key, result)
    return result


def shard_header(pipe: Pipeline, results: dict[str, list[dict[str, Any]]], stats: dict[str, Any]) -> dict[str, Any]:
    """What ``shard_index.json`` says of every shard: format, dtypes, tokenizer, special ids, the
    recipe's hash and seed, splits, and the media, packing and mixture settings in use."""
    cfg = pipe.recipe.sharding
    tok = results["tokenizer"][0]
    tokens = tok["special_ids"]["tokens"]  # by id: a record read back from JSON has its keys sorted
    header = {
        "format": cfg.format,
        "version": 1,
        "sequence_length": cfg.sequence_length,
        "dtypes": {"input_ids": cfg.token_dtype, "attention_mask": "int32", "modality_mask": "uint8", "labels": "int32"},
        "tokenizer": {"path": tok.get("path", HF_NAME), "sha256": tok["sha256"], "vocab_size": tok["vocab_size"],
                      "special_tokens": sorted(tokens, key=lambda t: (tokens[t], t))},
        "special_ids": tok["special_ids"],
        "recipe_sha256": pipe.fingerprint,
        "seed": pipe.recipe.seed,
        "split_ratios": cfg.splits,
    }
    for extra in ("position_ids", "document_ids"):
        if getattr(cfg, extra):
            header["dtypes"][extra] = "int32"
    if pipe.recipe.media is not None:
        header["media"] = media_header(pipe, tok, results["shards"])
    if cfg.packing != "concat":
        header["packing"] = cfg.packing
    if cfg.mixture:
        header["mixture"] = cfg.mixture
    if cfg.max_records:
        header["max_records"] = cfg.max_records
    if cfg.mixture or cfg.max_records:
        header["tokens_by_source"] = stats["tokens_by_source"]
    return header


def media_header(pipe: Pipeline, tok: dict[str, Any], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """A multimodal run's joint vocabulary and the learned embedding parts its shard tasks wrote."""
    media = pipe.media_layout(tok.get("codebooks"))
    embeddings: dict[str, Any] = {}
    for r in shards:
        for m, part in r.get("media", {}).get("embeddings", {}).items():
            embeddings.setdefault(m, {"model": part["model"], "dim": part["dim"], "parts": []})["parts"].append(
                {k: part[k] for k in ("embeddings", "ids", "rows")})
    if embeddings:
        media["embeddings"] = embeddings
    return media


def documents_index(
    pipe: Pipeline,
    records: CompletionRecords,
    stage: Stage,
    results: dict[str, list[dict[str, Any]]],
    stats: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """A curate-only run's index: ``documents_index.json`` (every part: path, documents, bytes,
    sha256; totals per split), ``version.json`` and ``stats.json``; parts an earlier run of this
    output left that are not listed are removed."""
    key = pipe.task_key(stage, 0)
    rec = records.done(0, key)
    if rec is not None and pipe.layout.documents_index.exists() and pipe.layout.stats.exists():
        return rec
    out = pipe.recipe.output
    parts = [p for r in results["documents"] for p in r["documents"]]
    totals = {"parts": len(parts), "documents": sum(p["documents"] for p in parts),
              "bytes": sum(p["bytes"] for p in parts)}
    index = {"format": "documents", "version": 1, "documents_format": out.documents,
             "fields": ["id", "text", "source", "offset", "metadata"], "recipe_sha256": pipe.fingerprint,
             "seed": pipe.recipe.seed, "split_ratios": pipe.recipe.sharding.splits,
             "splits": {s: {"documents": v["documents"]} for s, v in stats["splits"].items()},
             "parts": parts, "totals": totals}
    listed = {p["path"] for p in parts}
    for f in sorted(pipe.layout.documents.glob("part_*")):
        if f"documents/{f.name}" not in listed:
            f.unlink()
    atomic_write_json(pipe.layout.documents_index, index)
    write_version(pipe.output)
    stats["documents_output"] = totals
    stats["ids"] = {"duplicated": duplicate_ids(pipe, console)}
    atomic_write_json(pipe.layout.stats, stats)
    result = IndexResult(totals).to_record()
    records.write(0, key, result)
    return result


def duplicate_ids(pipe: Pipeline, console: Console) -> int:
    """Documents in the shards whose id another document has too, with one warning line naming a
    few of them and their sources. Only ids from an ``id_field`` can collide (derived ids hash the
    source, path and offset), so without one nothing is read; otherwise the final lineage's ids,
    one row per document (a document spanning rows or repeated by a mixture weight is one)."""
    if not any(getattr(src, "id_field", None) for src in pipe.sources.values()):
        return 0
    cols = ["doc_id", "source_name", "source_uri", "offset"]
    try:
        docs = read_lineage(pipe.output, columns=cols).group_by(cols).aggregate([])
    except CorpusforgeError:  # no lineage tables: nothing to compare
        return 0
    per_id = docs.group_by("doc_id").aggregate([("source_name", "count"), ("source_name", "distinct")])
    dup = per_id.filter(pc.greater(per_id["source_name_count"], 1)).sort_by("doc_id")
    if not dup.num_rows:
        return 0
    n = pc.sum(dup["source_name_count"]).as_py() - dup.num_rows
    examples = "; ".join(f"{r['doc_id']!r} in {', '.join(sorted(r['source_name_distinct']))}"
                         for r in dup.slice(0, 3).to_pylist())
    console.print(f"warning: {n:,} documents reuse an id another document has ({dup.num_rows:,} ids, e.g. {examples}); "
                  "`trace --doc-id` finds them all: make ids unique with id_prefix: \"{source}/\" on the sources",
                  highlight=False, soft_wrap=True, markup=False)
    return n
