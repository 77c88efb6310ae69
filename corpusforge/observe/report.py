"""``stats.json`` from the task records, and the table printed at the end of a run."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from corpusforge.observe.histogram import LENGTH_EDGES, merge_histograms
from corpusforge.observe.stats import TIMING, earlier_seconds, task_seconds
from corpusforge.stages import stage_kind

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline


def build_stats(
    pipe: Pipeline, results: dict[str, list[dict[str, Any]]], stage_seconds: dict[str, float], elapsed: float,
    started_at: float,
) -> dict[str, Any]:
    """Everything a user asks after a run: what came in, what was dropped and why, what came out.

    ``stage_seconds`` and ``elapsed`` are this invocation's wall times; ``started_at`` (epoch
    seconds) is when it began, so the tasks earlier invocations of a resumed run finished add their
    recorded time: ``seconds`` and ``mb_per_s`` cover the whole run, ``invocation_seconds`` this one.
    """
    input_bytes = sum(t.nbytes for t in pipe.plan)
    quarantine: Counter[str] = Counter()
    lost = 0  # quarantined documents; a refused media reference is an entry, not a lost document
    stages = []
    earlier_total = 0.0
    for stage in pipe.stages():
        recs = results.get(stage.name, [])
        earlier = earlier_seconds(recs, started_at)
        earlier_total += earlier
        entry: dict[str, Any] = {"name": stage.name, "kind": stage.kind, "tasks": stage.n_tasks,
                                 "seconds": round(stage_seconds.get(stage.name, 0.0) + earlier, 3)}
        if any(TIMING in r for r in recs):
            entry["task_seconds"] = round(task_seconds(recs), 3)
        peaks = [r["peak_rss_mb"] for r in recs if "peak_rss_mb" in r]
        if peaks:
            entry["peak_rss_mb"] = max(peaks)
        entry.update(stage_kind(stage.kind).summarize(recs))  # per-step counts, or the stage's own figures
        if stage.kind == "curate":
            for r in recs:
                quarantine.update(r.get("quarantine_reasons", {}))
                lost += r.get("quarantined", sum(r.get("quarantine_reasons", {}).values()))
        stages.append(entry)
    splits: dict[str, dict[str, int]] = {}
    by_source: Counter[str] = Counter()
    docs_by_source: Counter[str] = Counter()
    shard_recs = results.get("shards") or results.get("documents", [])  # a curate-only run: its documents
    for r in shard_recs:
        for split, c in r["counts"].items():
            agg = splits.setdefault(split, {"documents": 0, "tokens": 0})
            agg["documents"] += c["documents"]
            agg["tokens"] += c["tokens"]
            if "truncated_tokens" in c:
                agg["truncated_tokens"] = agg.get("truncated_tokens", 0) + c["truncated_tokens"]
        by_source.update(r["tokens_by_source"])
        docs_by_source.update(r.get("documents_by_source", {}))
    read = stages[0]["steps"][0] if stages and stages[0].get("steps") else {"docs_out": 0}
    kept = sum(s["documents"] for s in splits.values())
    total_tokens = sum(s["tokens"] for s in splits.values())
    total = elapsed + earlier_total  # this invocation and the tasks earlier ones finished
    return {
        "recipe": pipe.recipe.name,
        "recipe_sha256": pipe.fingerprint,
        "input": {"tasks": len(pipe.plan), "bytes": input_bytes},
        "documents": {"read": read["docs_out"], "quarantined": lost, "kept": kept},
        "quarantine": dict(sorted(quarantine.items())),
        "stages": stages,
        "splits": splits,
        "tokens": total_tokens,
        "tokens_by_source": {k: {"tokens": by_source[k], "documents": docs_by_source[k],
                                 "share": round(by_source[k] / total_tokens, 6) if total_tokens else 0.0}
                             for k in sorted(set(by_source) | set(docs_by_source))},
        "sources": _per_source(pipe, results.get("curate", [])),
        "lengths": {"edges": list(LENGTH_EDGES),
                    "read": merge_histograms(r.get("lengths_read") for r in results.get("curate", [])),
                    "curated": merge_histograms(r.get("lengths_curated") for r in shard_recs)},
        **({"media": media_stats(results, pipe)} if pipe.recipe.media is not None else {}),
        "languages": _sum_counts(r.get("languages", {}) for r in shard_recs),
        "licenses": _sum_counts(r.get("licenses", {}) for r in shard_recs),
        "seconds": round(total, 3),
        "invocation_seconds": round(elapsed, 3),
        "mb_per_s": round(input_bytes / 1e6 / total, 3) if total > 0 else None,
    }


def media_stats(results: dict[str, list[dict[str, Any]]], pipe: Pipeline) -> dict[str, Any]:
    """A multimodal run's media record: media tokens in the shards, items that failed to decode
    (left out of their documents in the shards stage, and skipped where codebooks were trained) by
    reason, and the packer's span counters (``span_padding``, ``split_spans``, ``filled_rows``)."""
    from corpusforge.media.stage import SPAN_COUNTERS

    recs = [r["media"] for r in results.get("shards", []) if "media" in r]
    tokenizer = [r for s in pipe.stages() if s.kind == "tokenizer" for r in results.get(s.name, [])]
    return {"tokens": sum(r.get("tokens", 0) for r in recs),
            "failed_items": sum(r.get("failed_items", 0) for r in recs),
            "decode_failures": _sum_counts(r.get("failures", {}) for r in recs),
            "codebook_decode_failures": _sum_counts(r.get("decode_failures", {}) for r in tokenizer),
            **{k: sum(r.get(k, 0) for r in recs) for k in SPAN_COUNTERS}}


def _sum_counts(dicts: Any) -> dict[str, int]:
    total: Counter[str] = Counter()
    for d in dicts:
        total.update(d)
    return dict(sorted(total.items()))


def _per_source(pipe: Pipeline, curate: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Tasks, input bytes and documents read of every source (curate records are in task order)."""
    out = {name: {"tasks": 0, "bytes": 0, "documents_read": 0} for name in pipe.sources}
    for i, t in enumerate(pipe.plan):
        entry = out[t.source]
        entry["tasks"] += 1
        entry["bytes"] += t.nbytes
        if i < len(curate) and curate[i].get("steps"):
            entry["documents_read"] += curate[i]["steps"][0]["docs_out"]
    return out


def print_report(stats: dict[str, Any], console: Console) -> None:
    table = Table(title=f"corpusforge: {stats['recipe']}", show_lines=False)
    for col in ("stage", "step", "docs in", "docs out", "dropped (reasons)", "MB in", "s", "MB/s"):
        table.add_column(col, justify="right" if col not in ("stage", "step", "dropped (reasons)") else "left")
    for stage in stats["stages"]:
        for s in stage.get("steps", []):
            mb = s["chars_in"] / 1e6
            drops = ", ".join(f"{k}={v}" for k, v in s["drops"].items())
            rate = f"{mb / s['seconds']:.1f}" if s["seconds"] > 0 and mb else ""
            table.add_row(stage["name"], s["name"], f"{s['docs_in']:,}", f"{s['docs_out']:,}", drops,
                          f"{mb:.2f}", f"{s['seconds']:.2f}", rate)
    console.print(table)
    d = stats["documents"]
    console.print(
        f"documents read {d['read']:,}, quarantined {d['quarantined']:,}, kept {d['kept']:,}; "
        + (f"written to {parts['parts']:,} documents parts (curate-only); " if (parts := stats.get("documents_output"))
           else f"tokens {stats['tokens']:,}; shards {stats.get('shards', {}).get('shards', 0)}; ")
        + f"{stats['seconds']:.1f} s ({stats['mb_per_s']} MB/s end to end)"
        + (f", {inv:.1f} s of it in this resumed invocation"
           if (inv := stats.get("invocation_seconds")) is not None and stats["seconds"] - inv >= 0.05 else "")
    )
    line = media_line(stats)
    if line:
        console.print(line, highlight=False)


def media_line(stats: dict[str, Any]) -> str:
    """One line on a multimodal run's media (tokens, decode failures by reason, span packing), or ""."""
    m = stats.get("media")
    if not m:
        return ""
    failures = {**m.get("codebook_decode_failures", {})}
    for k, v in m.get("decode_failures", {}).items():
        failures[k] = max(failures.get(k, 0), v)  # an item failing in both stages is one file
    why = "; ".join(f"{k} {v:,}" for k, v in sorted(failures.items(), key=lambda kv: -kv[1]))
    return (f"media: {m.get('tokens', 0):,} tokens; {m.get('failed_items', 0):,} items left out of their "
            f"documents (failed to decode{': ' + why if why else ''}); span padding {m.get('span_padding', 0):,}, "
            f"split spans {m.get('split_spans', 0):,}, filled rows {m.get('filled_rows', 0):,}")
