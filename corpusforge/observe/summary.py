"""The tables a data card and its HTML report share, derived from what a run leaves on disk.

Everything here reads ``stats.json``, ``shard_index.json`` and ``recipe.yaml`` (as dicts) and
returns plain rows, so the Markdown card and the HTML report say the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout
from corpusforge.state import read_json

# Where each source type keeps its location, in the order they are looked up.
_LOCATION_KEYS = ("path", "dataset", "url", "urls", "url_file", "query")


@dataclass
class OutputFacts:
    """A finished output as the card sees it."""

    output: Path
    stats: dict[str, Any]
    index: dict[str, Any]
    recipe: dict[str, Any]
    document_files: list[str]
    has_lineage: bool


def load_facts(output: str | Path) -> OutputFacts:
    """Read the files a card is built from; a missing or unreadable one is an error naming it."""
    output = Path(output)
    layout = OutputLayout(output)

    def need(path: Path) -> Path:
        if not path.is_file():
            raise CorpusforgeError(f"{path}: missing; a data card is written for the output of a finished "
                                   "corpusforge run")
        return path

    stats = read_json(need(layout.stats))
    if not layout.index.is_file() and layout.documents_index.is_file():
        # A curate-only output: documents and no shards; the card reads its splits as zero shards.
        index = read_json(layout.documents_index)
        index = {**index, "shards": [], "splits": {s: {"documents": v["documents"], "shards": 0, "samples": 0,
                                                      "tokens": 0, "bytes": 0} for s, v in index["splits"].items()}}
    else:
        index = read_json(need(layout.index))
    try:
        recipe = yaml.safe_load(need(layout.recipe).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CorpusforgeError(f"{layout.recipe}: not valid YAML: {exc}") from None
    docs = sorted(layout.rel(p) for p in layout.documents.glob("part_*")) if layout.documents.is_dir() else []
    return OutputFacts(output, stats, index, recipe, docs, any(layout.lineage.glob("*/*.parquet")))


def step_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step once, in order: documents in and out, drops by reason, drop rate.

    A corpus-wide step (dedup) appears at the end of the stage that signs and again at the start of
    the next one, where its removals happen; the later row (with the drops) is kept.
    """
    rows: list[dict[str, Any]] = []
    for stage in stats["stages"]:
        if stage["kind"] not in ("curate", "shards", "documents"):
            continue
        for s in stage.get("steps", []):
            if s["name"] == "staged":
                continue
            drops = dict(s["drops"])
            if s["name"] == "read" and s["docs_in"] > s["docs_out"] + sum(drops.values()):
                drops["quarantined"] = s["docs_in"] - s["docs_out"] - sum(drops.values())
            dropped = sum(drops.values())
            row = {"step": s["name"], "stage": stage["name"], "docs_in": s["docs_in"], "docs_out": s["docs_out"],
                   "dropped": dropped, "drop_rate": dropped / s["docs_in"] if s["docs_in"] else 0.0,
                   "drops": drops, "modified": s["modified"], "chars_in": s["chars_in"],
                   "chars_out": s["chars_out"], "seconds": s["seconds"]}
            if rows and rows[-1]["step"] == s["name"] and rows[-1]["stage"] != stage["name"]:
                rows[-1] = row
            else:
                rows.append(row)
    return rows


def dedup_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per deduplication step: documents seen, removed, clusters and their sizes."""
    rows: list[dict[str, Any]] = []
    by_name = {s["name"]: s for s in stats["stages"]}
    for stage in stats["stages"]:
        if stage["kind"] != "decide":
            continue
        result = dict(stage.get("result", {}))
        final = by_name.get(f"{stage['name']}_finalize")
        if final is not None:
            result.update(final.get("result", {}))
        sizes = {int(k): v for k, v in result.get("cluster_sizes", {}).items()}
        removed = result.get("removed", result.get("duplicates"))
        if removed is None:
            continue  # a corpus-wide step that removes nothing by itself (e.g. repeated-line counting)
        docs = result.get("documents", 0)
        rows.append({"stage": stage["name"], "documents": docs, "removed": removed,
                     "rate": removed / docs if docs else 0.0,
                     "clusters": result.get("clusters", sum(sizes.values()) if "cluster_sizes" in result else None),
                     "cluster_sizes": dict(sorted(sizes.items()))})
    return rows


def source_location(spec: dict[str, Any]) -> str:
    """Where a recipe source reads from, for people (never credentials: a SQL url is left out)."""
    for key in _LOCATION_KEYS:
        value = spec.get(key)
        if key == "url" and spec.get("type") == "sql":
            continue
        if isinstance(value, list):
            return ", ".join(str(v) for v in value[:3]) + (f" (+{len(value) - 3})" if len(value) > 3 else "")
        if value:
            return str(value)
    return str(spec.get("type", "files"))


def source_rows(facts: OutputFacts) -> list[dict[str, Any]]:
    """Per source: type, location, input bytes, documents read, documents and tokens in the shards."""
    specs = {s.get("name", f"source{i}"): s for i, s in enumerate(facts.recipe.get("sources") or [])}
    inputs = facts.stats.get("sources", {})
    tokens = facts.stats.get("tokens_by_source", {})
    rows = []
    for name in dict.fromkeys([*specs, *inputs, *tokens]):
        spec = specs.get(name, {})
        got, tok = inputs.get(name, {}), tokens.get(name, {})
        rows.append({"name": name, "type": spec.get("type", "files"), "uri": source_location(spec),
                     "license": (spec.get("metadata") or {}).get("license"),
                     "bytes": got.get("bytes"), "documents_read": got.get("documents_read"),
                     "documents": tok.get("documents", 0), "tokens": tok.get("tokens", 0),
                     "share": tok.get("share", 0.0)})
    return rows


def split_rows(facts: OutputFacts) -> list[dict[str, Any]]:
    """Per split: documents (stats) and shards, samples, tokens, bytes (the shard index)."""
    docs = facts.stats.get("splits", {})
    index = facts.index.get("splits", {})
    return [{"split": name, "documents": docs.get(name, {}).get("documents", 0), **index[name]}
            for name in split_names(facts)]


def split_names(facts: OutputFacts) -> list[str]:
    """The index's splits in the recipe's order (``train, val, test``), not the JSON's sorted one."""
    index = facts.index.get("splits", {})
    order = list((facts.recipe.get("sharding") or {}).get("splits") or {})
    return [s for s in order if s in index] + sorted(s for s in index if s not in order)


def tensor_dtypes(index: dict[str, Any]) -> list[tuple[str, str]]:
    """``(tensor, dtype)`` of the shards, the ids first as a trainer reads them."""
    dtypes = index.get("dtypes", {})
    first = [k for k in ("input_ids", "attention_mask", "modality_mask", "labels") if k in dtypes]
    return [(k, dtypes[k]) for k in first + sorted(k for k in dtypes if k not in first)]


def drop_reasons(stats: dict[str, Any]) -> list[tuple[str, int]]:
    """``("quality_thresholds: too_short", 1056)`` for every reason any step dropped documents for,
    and every quarantine reason, largest first."""
    out = [(f"{r['step']}: {reason}", n) for r in step_rows(stats) for reason, n in r["drops"].items()
           if n and not (r["step"] == "read" and reason == "quarantined")]
    out += [(f"quarantine: {reason}", n) for reason, n in stats.get("quarantine", {}).items() if n]
    return sorted(out, key=lambda x: (-x[1], x[0]))


def media_rows(stats: dict[str, Any]) -> list[tuple[str, int]]:
    """A multimodal run's media facts for people: tokens, items that failed to decode by stage and
    reason, and how spans were packed (empty for a text run)."""
    m = stats.get("media")
    if not m:
        return []
    rows = [("media tokens in the shards", m.get("tokens", 0)),
            ("items left out of their documents (failed to decode)", m.get("failed_items", 0))]
    rows += [(f"shards: {k}", v) for k, v in m.get("decode_failures", {}).items()]
    rows += [(f"codebook training skipped: {k}", v) for k, v in m.get("codebook_decode_failures", {}).items()]
    rows += [("span padding (PAD so a span starts a row)", m.get("span_padding", 0)),
             ("spans cut into whole pieces", m.get("split_spans", 0)),
             ("rows a span piece filled (instead of padding)", m.get("filled_rows", 0))]
    return rows


def ran_language_id(recipe: dict[str, Any]) -> bool:
    return any(s.get("type") == "language_id" for s in recipe.get("steps") or [])
