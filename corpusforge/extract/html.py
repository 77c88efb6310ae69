"""HTML to main text with trafilatura (boilerplate removed, precision favoured), plus metadata."""

from __future__ import annotations

import re
from typing import Any

from corpusforge.extract.base import Extracted, ExtractionError, require
from corpusforge.extract.charset import decode_web

_LANG = re.compile(r"""<html[^>]*\blang\s*=\s*["']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?)""", re.I)
_CANONICAL = re.compile(r"""<link[^>]+rel\s*=\s*["']?canonical["']?[^>]*>""", re.I)
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)""", re.I)


def html_to_text(html: str, url: str | None = None, favor_precision: bool = True) -> tuple[str, dict[str, Any]]:
    """Main text and ``{title, language, url, ...}`` of one HTML page ('' when nothing is left)."""
    trafilatura = require("trafilatura", "extract")
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        favor_precision=favor_precision,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
        deduplicate=False,
    )
    meta: dict[str, Any] = {}
    text = ""
    if doc is not None:
        get = doc.get if isinstance(doc, dict) else lambda k: getattr(doc, k, None)
        text = get("text") or ""
        for key in ("title", "author", "date", "sitename", "url", "language"):
            value = get(key)
            if value:
                meta[key] = value
    if "language" not in meta:
        m = _LANG.search(html[:5000])
        if m:
            meta["language"] = m.group(1).replace("_", "-").lower()
    if "url" not in meta:
        if url:
            meta["url"] = url
        else:
            link = _CANONICAL.search(html[:50_000])
            href = _HREF.search(link.group(0)) if link else None
            if href:
                meta["url"] = href.group(1)
    return text, meta


def extract_html(raw: bytes, url: str | None = None, header_charset: str | None = None,
                 favor_precision: bool = True) -> Extracted:
    """Decode (charset detection), then extract; no text left is an ExtractionError."""
    html, encoding = decode_web(raw, header_charset)
    text, meta = html_to_text(html, url, favor_precision)
    if not text.strip():
        raise ExtractionError("HTML has no main text")
    meta["encoding"] = encoding
    return Extracted(text, meta)
