"""Media inside documents: where each item sits in the text, what it is, and how to open it.

A document carrying media has ``metadata["media"]`` (also ``Document.media``): a list of items
``{"uri", "kind", "mime", "bytes", "hash"}`` in document order, with ``"data"`` (base64) instead of
a readable ``uri`` for media that came inline (``data:`` URIs). The text marks where each item goes
with one ``PLACEHOLDER`` character (U+FFFC, Unicode's object replacement character, which no text
step rewrites); a file that is only media has empty text. Items without a placeholder (a step
removed it) go after the text, so no media is lost silently.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
from collections.abc import Callable, Sequence
from typing import IO, Any

import xxhash

from corpusforge.errors import CorruptInput

PLACEHOLDER = "\ufffc"


def media_item(uri: str, kind: str, mime: str, data: bytes, inline: bool = False) -> dict[str, Any]:
    """The description of one media item; ``hash`` (xxh3-128 of the bytes) lets dedup compare media."""
    item: dict[str, Any] = {"uri": uri, "kind": kind, "mime": mime, "bytes": len(data),
                            "hash": xxhash.xxh3_128_hexdigest(data)}
    if inline:
        item["data"] = base64.b64encode(data).decode("ascii")
    return item


def media_of(doc: Any) -> list[dict[str, Any]]:
    """The document's media items (empty for a text document)."""
    return doc.media or doc.metadata.get("media") or []


def media_key(doc: Any) -> int:
    """A 64-bit key of the document's media content (its items' hashes in order), 0 without media.

    Near-duplicate steps mix it into what they compare, so two documents can only be near-duplicates
    when they carry the same media: a shared (or empty) caption on two pictures is not enough."""
    items = media_of(doc)
    if not items:
        return 0
    return xxhash.xxh3_64_intdigest("\x00".join(str(m.get("hash", "")) for m in items).encode()) or 1


def parts_of(text: str, items: list[dict[str, Any]]) -> list[str | dict[str, Any]]:
    """The document in order: text pieces and media items, split at the placeholders.

    Surplus placeholders are dropped; items beyond the placeholders come last."""
    pieces = text.split(PLACEHOLDER)
    out: list[str | dict[str, Any]] = []
    k = 0
    for i, piece in enumerate(pieces):
        if piece:
            out.append(piece)
        if i < len(pieces) - 1 and k < len(items):
            out.append(items[k])
            k += 1
    out.extend(items[k:])
    return out


def find_between(find: Callable[[str], Sequence[Any]], text: str) -> list[Any]:
    """The spans ``find`` reports (dataclasses with ``start``/``end``) in each piece of ``text``
    between placeholders, at their positions in ``text``: a span never covers a placeholder, so
    replacing spans (PII, secrets) keeps every media item where it was."""
    if PLACEHOLDER not in text:
        return list(find(text))
    out: list[Any] = []
    at = 0
    for piece in text.split(PLACEHOLDER):
        if piece.strip():
            out += [dataclasses.replace(sp, start=sp.start + at, end=sp.end + at) for sp in find(piece)]
        at += len(piece) + 1
    return out


def map_between(texts: list[str], fn: Callable[[list[str]], list[str | None]]) -> list[str | None]:
    """``fn`` (many texts in, a changed text or None each out) applied to the pieces of every text
    between placeholders, whitespace around each piece kept; None where no piece changed. Lets a
    text-rewriting step (augmentation) edit around media without moving or losing placeholders."""
    pieces, where = [], []
    split = [t.split(PLACEHOLDER) for t in texts]
    for i, parts in enumerate(split):
        for k, piece in enumerate(parts):
            core = piece.strip()
            if core:
                pieces.append(core)
                where.append((i, k))
    changed = [list(parts) for parts in split]
    touched = [False] * len(texts)
    for (i, k), new in zip(where, fn(pieces) if pieces else [], strict=True):
        if new is not None:
            old = split[i][k]
            lead, trail = old[: len(old) - len(old.lstrip())], old[len(old.rstrip()):]
            changed[i][k] = lead + new + trail
            touched[i] = True
    return [PLACEHOLDER.join(c) if t else None for c, t in zip(changed, touched, strict=True)]


def text_only(text: str) -> str:
    """The text without placeholders (what the text tokenizer trains on)."""
    return text.replace(PLACEHOLDER, "") if PLACEHOLDER in text else text


def open_item(item: dict[str, Any]) -> str | IO[bytes]:
    """Something the decoders can read: a local path, or the bytes of inline or remote media.

    A referenced item is opened only if its bytes still have the ``hash`` recorded when the source
    read them (``media_item``). Only a source that checked the reference against its root records
    one, and nobody can forge the hash of a file whose content they do not know: so an item list
    that arrived as record data (an API's or a table's ``media`` field) cannot pull in a private
    file, and a file changed since ingest is not tokenized in its place."""
    if "data" in item:
        return io.BytesIO(base64.b64decode(item["data"]))
    uri = item["uri"]
    want = item.get("hash")
    if not isinstance(want, str) or not want:
        raise CorruptInput(uri, "media item has no recorded hash (it was not read by a files source); not opened")
    if "://" not in uri:
        from corpusforge.sources.manifest import content_hash  # the same chunked xxh3-128 as ingest

        try:
            os.stat(uri)  # a missing file says so, not "hash mismatch" (stat: a FIFO is never opened)
        except OSError as exc:
            raise CorruptInput(uri, f"cannot open media: {exc.strerror or exc}") from None
        _check_hash(uri, content_hash(uri), want)
        return uri
    import fsspec

    try:
        with fsspec.open(uri, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CorruptInput(uri, f"cannot open media: {exc}") from exc
    _check_hash(uri, xxhash.xxh3_128_hexdigest(data), want)
    return io.BytesIO(data)


def _check_hash(uri: str, got: str, want: str) -> None:
    if got != want:
        raise CorruptInput(uri, "media bytes differ from those read at ingest (hash mismatch); not opened")


def item_name(item: dict[str, Any]) -> str:
    """How errors name the item: its uri, or the document it was inline in."""
    return str(item.get("uri") or "inline media")
