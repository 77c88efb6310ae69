"""Media documents from files: a media file (with its sidecar caption), HTML with its images in
document order, and records that name media files (``{"image": "cat.png", "caption": ...}``).

Used by the ``files`` source when ``media: pass``; everything here works on bytes and fsspec paths,
so local folders and object stores behave the same. A reference is loaded only when ``MediaScope``
allows it: inside the source's root (symlinks followed), or under a folder or URL prefix the
recipe lists in ``media_roots``; a record or page must not pull private files or fetch URLs with
the runner's credentials just by naming them.
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import fsspec
import orjson

from corpusforge.extract.detect import HEAD_BYTES, sniff
from corpusforge.media.decode import too_large, unsigned_image
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
    """``(family, mime)`` of media bytes, or None when they are not an image, audio or video
    (bytes named like an image but without an image signature are not one)."""
    kind = sniff(data[:HEAD_BYTES], name)
    if not kind.is_media or unsigned_image(kind.family, kind.mime):
        return None
    return kind.family, kind.mime


def refusal(family: str, mime: str, data: bytes) -> str | None:
    """Why a media file is not taken at ingest, or None: an image without an image signature, or
    whose header says it is over ``decode.MAX_PIXELS`` (read from the header alone, no pixels)."""
    why = unsigned_image(family, mime)
    if why or family != "image":
        return why
    import io
    import warnings

    try:
        from PIL import Image
    except ImportError:
        return None  # decoding says so, where codebooks are trained
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return too_large(im.width, im.height, "image")
    except Image.DecompressionBombError as exc:
        return f"image too large (a decompression bomb?): {exc}"
    except Exception as exc:  # noqa: BLE001 -- Pillow's plugins raise many types on malformed headers
        return f"cannot decode image: {type(exc).__name__}: {exc}"


# -- where references may point -----------------------------------------------------------------------

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.I)
_WEB = ("http", "https")


class MediaScope:
    """Where the media references of one source's files may point: under the source's ``root``
    (a local folder, compared after following symlinks, or a URL prefix such as ``s3://bucket/in``),
    or under one of ``extra`` (the source's ``media_roots``: folders or URL prefixes).
    ``any_local`` (``allow_external_media``) lets every local file through; remote URLs still need
    a prefix in ``extra``. ``data:`` URIs are always allowed (their bytes are in the reference)."""

    def __init__(self, root: str, extra: Sequence[str] = (), any_local: bool = False):
        self.root = root
        self.any_local = any_local
        self.local_roots: list[str] = []
        self.url_roots: list[tuple[str, str, str]] = []
        for r in (root, *extra):
            url = _as_url(r)
            if url is not None:
                self.url_roots.append(url)
            else:
                self.local_roots.append(os.path.realpath(os.path.expanduser(_local_path(r))))

    def refusal(self, uri: str) -> str | None:
        """Why ``uri`` (a resolved reference) may not be loaded, or None when it may."""
        if uri.startswith("data:"):
            return None
        url = _as_url(uri)
        if url is not None:
            if any(_under_url(url, r) for r in self.url_roots):
                return None
            return (f"a remote reference ({url[0]}://) outside the source; list its prefix in media_roots "
                    "to allow it")
        path = os.path.normpath(_local_path(uri))
        real = os.path.realpath(path)
        if self.any_local or any(_under(real, r) for r in self.local_roots):
            return None
        if any(_under(path, r) for r in self.local_roots) or real != path:
            return f"a symlink to {real}, outside the source root {self.root}; list that folder in media_roots to allow it"
        return f"outside the source root {self.root}; list its folder in media_roots to allow it"


def scope_of(uri: str, extra: Sequence[str] = ()) -> MediaScope:
    """The default scope of a page or records file read on its own: its folder."""
    return MediaScope(posixpath.dirname(uri), extra)


def is_web(uri: str) -> bool:
    """An ``http(s)://`` (or protocol-relative ``//``) reference."""
    m = _SCHEME.match(uri)
    return uri.startswith("//") or (m is not None and m.group(1).lower() in _WEB)


def _local_path(uri: str) -> str:
    return unquote(uri[len("file://"):]) if uri.lower().startswith("file://") else uri


def _as_url(uri: str) -> tuple[str, str, str] | None:
    """``(scheme, host, normalized path)`` of a URL other than ``file://``; None for a local path."""
    if uri.startswith("//"):
        uri = "https:" + uri
    m = _SCHEME.match(uri)
    if m is None or m.group(1).lower() == "file":
        return None
    parts = urlsplit(uri)
    path = posixpath.normpath("/" + unquote(parts.path).lstrip("/"))
    return parts.scheme.lower(), parts.netloc.lower(), path


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _under_url(url: tuple[str, str, str], root: tuple[str, str, str]) -> bool:
    return url[:2] == root[:2] and (url[2] == root[2] or url[2].startswith(root[2].rstrip("/") + "/"))


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


def record_media(fields: dict[str, Any], records_uri: str, scope: MediaScope | None = None
                 ) -> tuple[list[dict[str, Any]], list[str]]:
    """Media items of a record's ``image``/``audio``/``video`` fields (a path relative to the records
    file, or a list of them), removed from ``fields``, and why each reference ``scope`` refused was
    not loaded. A record's own ``media`` list (items as the files source writes them) is checked the
    same way and rebuilt from the bytes. Raises FileNotFoundError/ValueError naming a missing or
    non-media reference."""
    scope = scope or scope_of(records_uri)
    items: list[dict[str, Any]] = []
    refused: list[str] = []
    for key, ref in _record_refs(fields):
        if ref.startswith("data:"):
            uri = ref
        elif key == "media":
            uri = ref  # an item's uri is where it was read, not relative to this file
        else:
            uri = _resolve(ref, records_uri)
        why = scope.refusal(uri)
        if why is not None:
            refused.append(f"field {key!r}: {_short(ref)!r} is {why}")
            continue
        item = _load(uri, ref)
        if item is None:
            raise ValueError(f"field {key!r}: {_short(ref)!r} is not an image, audio or video file")
        items.append(item)
    return items, refused


def _record_refs(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, reference)`` of every media reference of a record, the fields removed."""
    out: list[tuple[str, str]] = []
    for key in MEDIA_FIELDS:
        value = fields.get(key)
        if value is None:
            continue
        refs = value if isinstance(value, list) else [value]
        if not all(isinstance(r, str) for r in refs):
            continue
        del fields[key]
        out += [(key, r) for r in refs]
    own = fields.get("media")
    if isinstance(own, list) and all(isinstance(m, dict) for m in own):
        del fields["media"]
        for m in own:
            if isinstance(m.get("data"), str):
                out.append(("media", "data:;base64," + m["data"]))
            elif isinstance(m.get("uri"), str):
                out.append(("media", m["uri"]))
    return out


def _short(ref: str) -> str:
    """A reference as errors name it (a ``data:`` URI is cut, its bytes say nothing)."""
    return ref if len(ref) <= 200 else ref[:200] + "..."


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


def resolve_ref(ref: str, base_uri: str) -> str:
    """Where a page's or records file's media reference points (see ``_resolve``)."""
    return _resolve(ref, base_uri)


def _resolve(ref: str, base_uri: str) -> str:
    """A reference's uri beside ``base_uri`` (the page or records file); ``data:`` URIs and URLs
    as they are (a protocol-relative ``//host/x`` as ``https:``); ``file://`` URIs as local paths.
    Whether it may be loaded is ``MediaScope.refusal``'s answer, not this one's."""
    if ref.startswith("data:"):
        return ref
    if ref.startswith("//"):
        return "https:" + ref
    if ref.lower().startswith("file://"):
        return posixpath.normpath(_local_path(ref.split("#", 1)[0].split("?", 1)[0]))
    if _SCHEME.match(ref):
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


def interleaved_html(raw: bytes, uri: str, scope: MediaScope | None = None,
                     on_refused: Callable[[str], None] | None = None
                     ) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Text and media of an HTML page in document order: a PLACEHOLDER line where each ``<img>``,
    ``<video>`` or ``<audio>`` was. Sources are files relative to the page or ``data:`` URIs, as
    ``scope`` (default: the page's folder) allows; web URLs it does not allow and missing files are
    counted in ``media_skipped``, other refused sources (outside the root, a symlink out of it,
    ``s3://``...) in ``media_refused``, each reason passed to ``on_refused``. Script, navigation,
    header, footer and form elements are left out."""
    from lxml import html as lxml_html

    from corpusforge.extract.charset import decode_web

    scope = scope or scope_of(uri)
    text, encoding = decode_web(raw, None)
    root = lxml_html.document_fromstring(text)
    chunks: list[str] = []
    items: list[dict[str, Any]] = []
    skipped = refused = 0

    def media(el: Any) -> None:
        nonlocal skipped, refused
        src = el.get("src")
        if not src and el.tag in ("video", "audio"):
            src = next((s.get("src") for s in el.iter("source") if s.get("src")), None)
        target = _resolve(src.strip(), uri) if src and src.strip() else None
        why = scope.refusal(target) if target is not None else None
        item = None
        if target is not None and why is None:
            try:
                item = _load(target, src)
            except OSError:
                item = None
        elif why is not None and not is_web(target or ""):
            refused += 1
            if on_refused is not None:
                on_refused(f"<{el.tag}> {_short(src.strip())!r} is {why}")
            return
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
    if refused:
        meta["media_refused"] = refused
    return out, meta, items
