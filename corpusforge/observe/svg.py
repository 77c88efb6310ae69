"""Bar charts as inline SVG strings, written by hand so the report needs no plotting library.

Every bar is a ``<rect class="bar">`` carrying ``data-label``, ``data-series`` and ``data-value``
and a ``<title>`` tooltip, so a browser shows the numbers on hover and a test can read them back.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _attr(s: object) -> str:
    return escape(str(s), quote=True)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.3g}"


def _nice_max(v: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``v`` (axis top)."""
    if v <= 0:
        return 1.0
    p = 10 ** math.floor(math.log10(v))
    return next(m * p for m in (1, 2, 5, 10) if m * p >= v)


def column_chart(
    name: str, labels: list[str], series: list[tuple[str, list[float]]], y_label: str = "",
    width: int = 1100, height: int = 300,
) -> str:
    """Grouped vertical bars: one group per label, one bar per series, a legend, a y axis with gridlines."""
    left, right, top, bottom = 70, 10, 28, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    # Counts are whole numbers: an axis top of at least 4 keeps the quarter gridlines on integers.
    top_value = max(4.0, _nice_max(max((v for _, vals in series for v in vals), default=0)))
    group_w = plot_w / max(1, len(labels))
    bar_w = min(48.0, max(1.0, group_w * 0.8 / max(1, len(series))))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{_attr(name)}" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" {_FONT}>']
    for i in range(5):
        v = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(v)}</text>')
    if y_label:
        out.append(f'<text x="14" y="{top + plot_h / 2:.1f}" transform="rotate(-90 14 {top + plot_h / 2:.1f})" '
                   f'text-anchor="middle" fill="#333">{escape(y_label)}</text>')
    for g, label in enumerate(labels):
        x0 = left + (g + 0.5) * group_w - bar_w * len(series) / 2
        for s, (sname, vals) in enumerate(series):
            v = vals[g]
            h = plot_h * v / top_value
            x = x0 + s * bar_w
            out.append(f'<rect class="bar" data-label="{_attr(label)}" data-series="{_attr(sname)}" '
                       f'data-value="{_attr(v)}" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                       f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(sname)} {escape(label)}: '
                       f'{_fmt(v)}</title></rect>')
        cx, cy = left + (g + 0.5) * group_w, top + plot_h + 12
        out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" transform="rotate(-40 {cx:.1f} {cy:.1f})" '
                   f'fill="#333">{escape(label)}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>')
    for s, (sname, _) in enumerate(series):
        x = left + s * 180
        out.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>'
                   f'<text x="{x + 16}" y="18" fill="#333">{escape(sname)}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(name: str, items: list[tuple[str, float]], unit: str = "", width: int = 1100) -> str:
    """Horizontal bars, one per ``(label, value)``, in the given order, value written after each bar."""
    label_w, row_h, top = 330, 22, 6
    plot_w = width - label_w - 110
    height = top * 2 + row_h * max(1, len(items))
    top_value = max((v for _, v in items), default=0) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{_attr(name)}" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" {_FONT}>']
    for i, (label, v) in enumerate(items):
        y = top + i * row_h
        w = plot_w * v / top_value
        shown = label if len(label) <= 52 else label[:51] + "…"
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#333">{escape(shown)}</text>'
                   f'<rect class="bar" data-label="{_attr(label)}" data-series="{_attr(name)}" data-value="{_attr(v)}" '
                   f'x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 6}" fill="{PALETTE[0]}">'
                   f'<title>{escape(label)}: {_fmt(v)}{escape(unit)}</title></rect>'
                   f'<text x="{label_w + max(w, 1) + 6:.1f}" y="{y + 15}" fill="#555">{_fmt(v)}{escape(unit)}</text>')
    out.append("</svg>")
    return "".join(out)
