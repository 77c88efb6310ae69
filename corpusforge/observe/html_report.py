"""``report.html``: one self-contained page of plots about an output, opening offline.

Inline CSS and hand-written inline SVG (``observe/svg.py``): no script, no font, no image is
fetched, and no plotting library is needed. The page is well-formed XML so tests parse it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from corpusforge.layout import INDEX, REPORT, STATS
from corpusforge.observe.histogram import LENGTH_EDGES, bin_label
from corpusforge.observe.summary import (
    OutputFacts,
    dedup_rows,
    drop_reasons,
    media_rows,
    ran_language_id,
    source_rows,
    split_rows,
    step_rows,
)
from corpusforge.observe.svg import bar_chart, column_chart

REPORT_NAME = REPORT

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1140px;color:#222;line-height:1.4}
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#666}.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:130px}
.tile b{display:block;font-size:20px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f4f4f4;text-align:center}td.t{text-align:left}svg.chart{display:block;margin:8px 0}
"""
# Cluster sizes above ten are grouped so a long tail of sizes stays a short axis.
_SIZE_GROUPS = ((11, 20), (21, 50), (51, 100), (101, 1000), (1001, 1 << 62))


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    return f"{v:,}" if isinstance(v, int) else escape(str(v))


def _html_table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{_num(v)}</td>" if isinstance(v, (int, float)) or str(v).endswith("%")
                                    else f'<td class="t">{escape(str(v))}</td>' for v in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def length_chart(stats: dict[str, Any]) -> str:
    """Documents per length bin as read and after the last curation step, over the bins in use."""
    lengths = stats.get("lengths") or {}
    before, after = lengths.get("read") or [], lengths.get("curated") or []
    if list(lengths.get("edges", [])) != list(LENGTH_EDGES) or not (any(before) or any(after)):
        return f'<p class="muted">No length histogram in {STATS} (an output from before they were counted).</p>'
    used = [i for i in range(len(LENGTH_EDGES)) if before[i] or after[i]]
    lo, hi = used[0], used[-1] + 1
    labels = [bin_label(i) for i in range(lo, hi)]
    return column_chart("lengths", labels, [("as read", before[lo:hi]), ("after curation", after[lo:hi])],
                        "documents")


def cluster_size_groups(sizes: dict[int, int]) -> list[tuple[str, int]]:
    """Clusters per size: one bar for each size 2-10, then grouped ranges (11-20, 21-50, ...)."""
    out = [(str(k), v) for k, v in sorted(sizes.items()) if k <= 10]
    for lo, hi in _SIZE_GROUPS:
        n = sum(v for k, v in sizes.items() if lo <= k <= hi)
        if n:
            out.append((f"{lo}-{hi}" if hi < 1 << 62 else f"≥{lo}", n))
    return out


def render_report(facts: OutputFacts) -> str:
    """The whole page: summary tiles, then one section per plot, then the step and source tables."""
    st, idx = facts.stats, facts.index
    name = (facts.recipe.get("card") or {}).get("pretty_name") or st.get("recipe", "corpusforge")
    docs, totals = st["documents"], idx.get("totals", {})
    tiles = [("documents read", docs["read"]), ("quarantined", docs["quarantined"]), ("documents kept", docs["kept"]),
             ("tokens", totals.get("tokens", 0)), ("samples", totals.get("samples", 0)),
             ("shards", totals.get("shards", 0)), ("input MB", round(st.get("input", {}).get("bytes", 0) / 1e6, 2)),
             ("seconds", st.get("seconds", 0))]
    body = [f"<h1>{escape(name)}</h1>",
            f'<p class="muted">corpusforge output of recipe <code>{escape(str(st.get("recipe")))}</code>, sha256 '
            f'<code>{escape(st.get("recipe_sha256", "")[:16])}</code>; the numbers come from {STATS} and '
            f"{INDEX} beside this file.</p>",
            '<div class="tiles">' + "".join(f'<div class="tile" data-tile="{escape(k)}"><b>{_num(v)}</b>{escape(k)}</div>'
                                            for k, v in tiles) + "</div>"]
    body.append("<h2>Document lengths (characters) before and after curation</h2>")
    body.append('<p class="muted">Documents per length bin (four bins per decade) as the sources yielded them, and '
                "as they left the last curation step (before max_records sampling and mixture weights).</p>")
    body.append(length_chart(st))
    steps = step_rows(st)
    body.append("<h2>Documents after each step</h2>")
    body.append(bar_chart("funnel", [(r["step"], r["docs_out"]) for r in steps]))
    reasons = drop_reasons(st)
    body.append("<h2>Drop reasons</h2>")
    body.append(bar_chart("drops", reasons) if reasons else '<p class="muted">No document was dropped.</p>')
    langs = st.get("languages", {})
    if langs and ran_language_id(facts.recipe):
        body.append("<h2>Language mix (documents in the shards)</h2>")
        top = sorted(langs.items(), key=lambda x: (-x[1], x[0]))
        items = top[:20] + ([("other", sum(v for _, v in top[20:]))] if len(top) > 20 else [])
        body.append(bar_chart("languages", items))
    sources = source_rows(facts)
    if idx.get("format") != "documents":  # a curate-only output has no tokens
        body.append("<h2>Tokens per source</h2>")
        body.append(bar_chart("tokens_by_source", [(r["name"], r["tokens"]) for r in sources]))
        body.append("<h2>Tokens per split</h2>")
        splits = split_rows(facts)
        body.append(bar_chart("tokens_by_split", [(r["split"], r["tokens"]) for r in splits]))
    media = media_rows(st)
    if media:
        body.append("<h2>Media</h2>")
        body.append(_html_table(["what", "count"], [[k, v] for k, v in media]))
    dedup = dedup_rows(st)
    if dedup:
        body.append("<h2>Deduplication: cluster sizes</h2>")
        for r in dedup:
            clusters = "" if r["clusters"] is None else f"; clusters of duplicates: {r['clusters']:,}"
            body.append(f"<p><b>{escape(r['stage'])}</b>: {r['removed']:,} of {r['documents']:,} documents removed "
                        f"({100 * r['rate']:.2f}%){clusters}.</p>")
            groups = cluster_size_groups(r["cluster_sizes"])
            if groups:
                body.append(column_chart(f"clusters:{r['stage']}", [g for g, _ in groups],
                                         [("clusters", [v for _, v in groups])], "clusters", width=700, height=240))
    body.append("<h2>Steps</h2>")
    body.append(_html_table(["step", "stage", "docs in", "docs out", "dropped", "drop rate", "modified", "seconds"],
                            [[r["step"], r["stage"], r["docs_in"], r["docs_out"], r["dropped"],
                              f"{100 * r['drop_rate']:.2f}%", r["modified"], float(r["seconds"])] for r in steps]))
    body.append("<h2>Sources</h2>")
    body.append(_html_table(["source", "location", "input bytes", "documents read", "documents in shards", "tokens"],
                            [[r["name"], r["uri"], r["bytes"] if r["bytes"] is not None else "",
                              r["documents_read"] if r["documents_read"] is not None else "", r["documents"],
                              r["tokens"]] for r in sources]))
    return ('<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
            f"<title>{escape(name)}: corpusforge report</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
