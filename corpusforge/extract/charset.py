"""Bytes to text for web content whose declared encoding may be missing or wrong."""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'").lower()).name
    except LookupError:
        return None


def declared_charset(raw: bytes) -> str | None:
    """The charset an HTML/XML document declares in its first 4 KB (meta or XML prolog)."""
    head = raw[:4096]
    m = _META_CHARSET.search(head)
    if m:
        return m.group(1).decode("ascii", "replace")
    m = re.match(rb"""\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_\-.]+)""", head)
    return m.group(1).decode("ascii") if m else None


def decode_web(raw: bytes, header_charset: str | None = None) -> tuple[str, str]:
    """``(text, encoding)``: BOM, then valid UTF-8, then the declared charset (HTTP header, then
    meta), then charset-normalizer's guess; a declaration that fails to decode is ignored.

    Valid multi-byte UTF-8 is almost never an accident, so it wins over a declared single-byte
    charset (the commonest wrong declaration is ``iso-8859-1`` on a UTF-8 page).
    """
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom):].decode(enc, "replace"), enc
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    for cand in (header_charset, declared_charset(raw)):
        enc = _codec(cand)
        if enc and enc != "utf-8":
            try:
                return raw.decode(enc), enc
            except UnicodeDecodeError:
                continue
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # without the extra, a lossy UTF-8 decode still gives usable text
        return raw.decode("utf-8", "replace"), "utf-8"
    best = from_bytes(raw[:200_000]).best()
    if best is None:
        return raw.decode("utf-8", "replace"), "utf-8"
    return raw.decode(best.encoding, "replace"), best.encoding
