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


# UTF-32 first: its little-endian BOM begins with UTF-16's.
_TEXT_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
              (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class UndetectedEncoding(ValueError):
    """Bytes that are not UTF-8 and whose encoding charset-normalizer cannot tell."""


def check_encoding(name: str) -> str:
    """``name`` itself if it is ``auto`` or a codec Python knows; ValueError names the option."""
    if name != "auto" and _codec(name) is None:
        raise ValueError(f"encoding: {name!r} is not a known text encoding (use auto or a codec name such as cp1252)")
    return name


def bom_encoding(raw: bytes) -> str | None:
    """The encoding a byte order mark at the start of ``raw`` declares, or None."""
    for bom, enc in _TEXT_BOMS:
        if raw.startswith(bom):
            return enc
    return None


def decode_text(raw: bytes, encoding: str = "auto", errors: str = "strict") -> tuple[str, str]:
    """``(text, encoding used)`` of a text file's bytes: a BOM decides at once; then an explicit
    codec; with ``auto``, UTF-8, then charset-normalizer's guess (without the ``[extract]`` extra:
    cp1252, then latin-1). UnicodeDecodeError for an explicit codec that does not fit (strict),
    UndetectedEncoding when auto finds no encoding."""
    enc = bom_encoding(raw)
    if enc:
        return raw[len(codecs.lookup(enc).encode("\ufeff")[0]):].decode(enc, errors), enc
    if encoding != "auto":
        return raw.decode(encoding, errors), _codec(encoding) or encoding
    try:
        return raw.decode("utf-8"), "utf-8"  # the fast path: almost every file
    except UnicodeDecodeError:
        if errors == "replace":
            return raw.decode("utf-8", "replace"), "utf-8"
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        for enc in ("cp1252", "latin-1"):
            try:
                return raw.decode(enc), enc
            except UnicodeDecodeError:
                continue
    from charset_normalizer.md import mess_ratio

    best = from_bytes(raw[:200_000]).best()
    if best is None:
        raise UndetectedEncoding("not valid UTF-8 and no text encoding detected")
    try:  # Western text with few accents is often guessed as a DOS codepage (cp852 for curly quotes)
        text = raw.decode("cp1252")
        if mess_ratio(text[:200_000], 1.0) <= best.chaos + 0.01:
            return text, "cp1252"
    except UnicodeDecodeError:
        pass
    enc = _codec(best.encoding) or best.encoding
    return raw.decode(enc, "replace"), enc
