"""Media documents from files: a media file (with its sidecar caption), HTML with its images in
document order, and records that name media files (``{"image": "cat.png", "caption": ...}``).

Used by the ``files`` source when ``media: pass``; everything here works on bytes and fsspec paths,
so local folders and object stores behave the same.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import fsspec
import orjson

from corpusforge.extract.detect import HEAD_BYTES, sniff
from corpusforge.media.items import PLACEHOLDER, media_item

MEDIA_FIELDS = ("image", "audio", "video")
CAPTION_EXTENSIONS = (".txt", ".json")
_MEDIA_NAME = re.compile(r"\.(png|jpe?g|gif|webp|bmp|tiff?|wav|mp3|flac|ogg|opus|m4a|mp4|mov|mkv|webm|avi)$", re.I)
_HAS_MEDIA_TAG = re.compile(rb"<(?:img|video|audio)\b", re.I)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
                        "head", "iframe", "svg", "button", "select"})
_BLOCK_TAGS = frozenset({"p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li",
                         "ul", "ol", "table", "tr", "blockquote", "pre", "figure", "figcaption", "dd", "dt",
                         "dl", "body", "hr"})

Listing = Callable[[str], set[str]]


def read_bytes(uri: str) -> bytes:
    with fsspec.open(uri, "rb") as fh:
        return fh.read()


def kind_of(data: bytes, name: str) -> tuple[str, str] | None:
    """``(family, mime)`` of media bytes, or None when they are not an image, audio or video."""
    kind = sniff(data[:HEAD_BYTES], name)
    return (kind.family, kind.mime) if kind.is_media else None


# -- captions --------------------------------------------------------------------------------------


def caption_sidecars(media_uri: str) -> list[str]:
    """Where a media file's caption may be: same folder, same stem, ``.txt`` or ``.json``."""
    stem = posixpath.splitext(media_uri)[0]
    return [stem + ext for ext in CAPTION_EXTENSIONS]


def is_caption(uri: str, listing: Listing) -> bool:
    """A ``.txt``/``.json`` file is a caption when a media file of the same stem is beside it."""
    stem, ext = posixpath.splitext(uri)
    if ext.lower() not in CAPTION_EXTENSIONS:
        return False
    base = posixpath.basename(stem)
    return any(_MEDIA_NAME.search(n) and posixpath.splitext(n)[0] == base for n in listing(posixpath.dirname(uri)))


def read_caption(media_uri: str, listing: Listing) -> tuple[str, dict[str, Any]] | None:
    """The caption text and extra metadata of a media file's sidecar, or None without one.

    A ``.json`` sidecar holds ``{"caption": ...}`` (or ``"text"``); its other fields become metadata."""
    names = listing(posixpath.dirname(media_uri))
    for side in caption_sidecars(media_uri):
        if posixpath.basename(side) not in names:
            continue
        raw = read_bytes(side)
        if side.endswith(".txt"):
            return raw.decode("utf-8-sig", "replace").strip(), {"caption_file": posixpath.basename(side)}
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if isinstance(obj, dict):
            text = obj.pop("caption", None) or obj.pop("text", None)
            if isinstance(text, str):
                return text.strip(), {**obj, "caption_file": posixpath.basename(side)}
    return None


# -- records naming media ----------------------------------------------------------------------------


def record_media(fields: dict[str, Any], records_uri: str) -> list[dict[str, Any]]:
    """Media items of a record's ``image``/``audio``/``video`` fields (a path relative to the records
    file, or a list of them), removed from ``fields``; raises FileNotFoundError/ValueError naming it."""
    items = []
    for key in MEDIA_FIELDS:
        value = fields.get(key)
        if value is None:
            continue
        refs = value if isinstance(value, list) else [value]
        if not all(isinstance(r, str) for r in refs):
            continue
        del fields[key]
        for ref in refs:
            uri = _resolve(ref, records_uri)
            if uri is None:
                raise ValueError(f"field {key!r}: {ref!r} is neither a local path nor a data: URI")
            item = _load(uri, ref)
            if item is None:
                raise ValueError(f"field {key!r}: {ref!r} is not an image, audio or video file")
            items.append(item)
    return items


_SRC = re.compile(rb"""<(?:img|video|audio|source)\b[^>]*?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def html_media_refs(raw: bytes) -> list[str]:
    """The ``src`` of every ``<img>``, ``<video>``, ``<audio>`` and ``<source>`` of an HTML page."""
    return [(a or b or c).decode("utf-8", "replace").strip() for a, b, c in _SRC.findall(raw)]


def record_media_refs(raw: bytes) -> list[str]:
    """The media references in the ``image``/``audio``/``video`` fields of JSON or JSONL records."""
    text = raw.strip()
    try:
        records = orjson.loads(text)  # a JSON document (or JSONL of one line)
    except orjson.JSONDecodeError:
        records = None
    if records is None:
        records = []
        for line in text.splitlines():
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    out: list[str] = []
    for rec in records if isinstance(records, list) else [records]:
        if isinstance(rec, dict):
            for key in MEDIA_FIELDS:
                value = rec.get(key)
                out += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    return out


def resolve_ref(ref: str, base_uri: str) -> str | None:
    """Where a page's or records file's media reference points (see ``_resolve``)."""
    return _resolve(ref, base_uri)


def _resolve(ref: str, base_uri: str) -> str | None:
    """A reference's uri beside ``base_uri`` (the page or records file); ``data:`` URIs as they
    are; None for web URLs (no network here)."""
    if ref.startswith("data:"):
        return ref
    if ref.lower().startswith(("http://", "https://", "//")):
        return None
    if re.match(r"^[a-z][a-z0-9+.-]*://", ref, re.I):
        return ref
    ref = unquote(ref.split("#", 1)[0].split("?", 1)[0])
    proto, sep, path = base_uri.rpartition("://")
    joined = ref if ref.startswith("/") else posixpath.join(posixpath.dirname(path), ref)
    return f"{proto}{sep}{posixpath.normpath(joined)}"


def _load(uri: str, ref: str) -> dict[str, Any] | None:
    """The media item at ``uri`` (reads its bytes for kind and hash); None when it is not media."""
    if uri.startswith("data:"):
        head, _, payload = uri.partition(",")
        try:
            data = base64.b64decode(payload, validate=False) if head.endswith(";base64") else unquote(payload).encode()
        except (binascii.Error, ValueError):
            return None
        found = kind_of(data, "")
        return media_item("data:", *found, data, inline=True) if found else None
    data = read_bytes(uri)
    found = kind_of(data, ref)
    return media_item(uri, *found, data) if found else None


# -- HTML --------------------------------------------------------------------------------------------


def has_media_tags(raw: bytes) -> bool:
    return _HAS_MEDIA_TAG.search(raw) is not None


def interleaved_html(raw: bytes, uri: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Text and media of an HTML page in document order: a PLACEHOLDER line where each ``<img>``,
    ``<video>`` or ``<audio>`` was. Sources are local files relative to the page or ``data:`` URIs;
    web URLs and missing files are counted in ``media_skipped``. Script, navigation, header, footer
    and form elements are left out."""
    from lxml import html as lxml_html

    from corpusforge.extract.charset import decode_web

    text, encoding = decode_web(raw, None)
    root = lxml_html.document_fromstring(text)
    chunks: list[str] = []
    items: list[dict[str, Any]] = []
    skipped = 0

    def media(el: Any) -> None:
        nonlocal skipped
        src = el.get("src")
        if not src and el.tag in ("video", "audio"):
            src = next((s.get("src") for s in el.iter("source") if s.get("src")), None)
        target = _resolve(src.strip(), uri) if src else None
        item = None
        if target is not None:
            try:
                item = _load(target, src)
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                item = None
        if item is None:
            skipped += 1
            return
        alt = el.get("alt")
        if alt:
            item["alt"] = alt
        items.append(item)
        chunks.append(f"\n{PLACEHOLDER}\n")

    def walk(el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _SKIP_TAGS:
            return
        if tag in ("img", "video", "audio"):
            media(el)
            return
        if tag == "br":
            chunks.append("\n")
        block = tag in _BLOCK_TAGS
        if block:
            chunks.append("\n")
        if el.text and tag:
            chunks.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                chunks.append(child.tail)
        if block:
            chunks.append("\n")

    body = root.find("body")
    walk(body if body is not None else root)
    lines = (" ".join(line.split()) for line in "".join(chunks).split("\n"))
    out = "\n".join(line for line in lines if line)
    meta: dict[str, Any] = {"format": "html", "encoding": encoding}
    title = root.findtext(".//title")
    if title and title.strip():
        meta["title"] = " ".join(title.split())
    if skipped:
        meta["media_skipped"] = skipped
    return out, meta, items
