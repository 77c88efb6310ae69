"""The ``image``, ``audio`` and ``video`` input formats, and what the files source does with media
(``media: pass``): a media file becomes a document (its sidecar caption as text), an HTML page
keeps its media in document order, a record's ``image``/``audio``/``video`` fields load the files
they name. ``MediaReading`` holds one source's media options and its folder-listing caches; the
bytes-level work is in ``media/ingest.py``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fsspec.core import url_to_fs

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import CorruptInput
from corpusforge.media import ingest as media_ingest
from corpusforge.media.items import PLACEHOLDER
from corpusforge.redact_urls import redact_url
from corpusforge.sources.input_formats import INPUT_FORMATS, Detect, InputFormat

if TYPE_CHECKING:
    from corpusforge.extract.detect import Kind
    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.base import Part
    from corpusforge.sources.files import FilesSource
    from corpusforge.sources.readers import Record


@dataclass(frozen=True)
class MediaOptions:
    """The media options of a files source (recipe keys ``media``, ``embedded_media``,
    ``media_roots``, ``allow_external_media``): whether media is read at all (``pass``) or
    quarantined, whether a media file that a page or record embeds is also a document of its own,
    and where referenced media may be loaded from besides the source's root."""

    media: Literal["quarantine", "pass"] = "quarantine"
    embedded_media: Literal["skip", "keep"] = "skip"
    media_roots: tuple[str, ...] = ()
    allow_external_media: bool = False

    @classmethod
    def of(cls, media: Literal["quarantine", "pass"], embedded_media: Literal["skip", "keep"],
           media_roots: list[str] | None, allow_external_media: bool) -> MediaOptions:
        if any(not isinstance(r, str) or not r.strip() for r in media_roots or []):
            raise ValueError("media_roots: every entry must be a folder or a URL prefix (a non-empty string)")
        return cls(media, embedded_media, tuple(r.strip() for r in media_roots or []), allow_external_media)


@dataclass
class MediaReading:
    """One files source's media handling: its options, metadata and folder caches."""

    options: MediaOptions
    source_name: str
    extra_metadata: dict[str, Any]
    _refs: dict[str, set[str]] = field(default_factory=dict)
    _listings: dict[str, set[str]] = field(default_factory=dict)
    _scopes: dict[str, media_ingest.MediaScope] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """Whether media is read (``media: pass``); otherwise media files are quarantined."""
        return self.options.media == "pass"

    def is_caption(self, path: str) -> bool:
        """Whether ``path`` is the caption of a media file beside it (read with that file)."""
        return self.enabled and media_ingest.is_caption(path, self.names)

    def wants_html(self, data: bytes) -> bool:
        """Whether an HTML page is read with its media (``media: pass`` and media tags in it)."""
        return self.enabled and media_ingest.has_media_tags(data)

    def document(self, part: Part, kind: Kind, ctx: TaskContext) -> Iterator[Document]:
        """A media file as a document: the media item, its sidecar caption as the text."""
        if not self.enabled:
            what = kind.mime or kind.family
            ctx.quarantine(part.path, f"media file: enable the multimodal stage (source option media: pass; {what})", None)
            return
        if self.options.embedded_media == "skip" and self._embedded(part):
            return  # already a part of the page or record that embeds it
        data = media_ingest.read_bytes(part.path)
        why = media_ingest.refusal(kind.family, kind.mime, data)
        if why:  # random bytes named .jpg, a decompression bomb: never a media document
            ctx.quarantine(part.path, why, None)
            return
        item = media_ingest.media_item(part.path, kind.family, kind.mime, data)
        text, caption_meta = "", {}
        caption = media_ingest.read_caption(part.path, self.names)
        if caption is not None:
            text, caption_meta = PLACEHOLDER + caption[0], caption[1]
        meta = {**self.extra_metadata, **caption_meta, "media": [item]}
        key = f"{self.source_name}/{part.key}"
        yield Document(text, make_doc_id(key, 0, part.key), redact_url(part.path), 0, meta, [item])

    def html(self, part: Part, data: bytes, ctx: TaskContext) -> Iterator[Document]:
        """An HTML page with its images, video and audio in document order."""
        def refused(why: str) -> None:
            ctx.quarantine(part.path, f"media reference refused: {why}", kept=True)

        text, meta, items = media_ingest.interleaved_html(data, part.path, self._scope(part), refused)
        if not text.strip(PLACEHOLDER + " \n"):
            if not items:
                raise CorruptInput(part.path, "HTML has no main text")
        meta = {**self.extra_metadata, **meta, "content_type": "text/html", "media": items}
        key = f"{self.source_name}/{part.key}"
        yield Document(text, make_doc_id(key, 0, text), redact_url(part.path), 0, meta, items or None)

    def records(self, part: Part, records: Iterator[Record], ctx: TaskContext) -> Iterator[Record]:
        """Records whose ``image``/``audio``/``video`` fields name media files: the media first,
        then the record's text (its caption) after a placeholder each. A refused reference is
        quarantined and left out; the record keeps its text and its other media."""
        scope = self._scope(part)
        for offset, text, fields in records:
            try:
                items, refused = media_ingest.record_media(fields, part.path, scope)
            except (OSError, ValueError) as exc:
                ctx.quarantine(f"{part.path} at {offset}", f"record media: {exc}", None)
                continue
            for why in refused:
                ctx.quarantine(f"{part.path} at {offset}", f"media reference refused: {why}", kept=True)
            if refused:
                fields["media_refused"] = len(refused)
            if items:
                fields["media"] = items
                text = PLACEHOLDER * len(items) + text
            yield offset, text, fields

    def names(self, folder: str) -> set[str]:
        """File names in ``folder`` (cached per source), to find captions beside media files."""
        if folder not in self._listings:
            try:
                fs, path = url_to_fs(folder)
                self._listings[folder] = {posixpath.basename(n) for n in fs.ls(path, detail=False)}
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                self._listings[folder] = set()
        return self._listings[folder]

    def _scope(self, part: Part) -> media_ingest.MediaScope:
        """Where the media that ``part`` names may be: the root it was found under, ``media_roots``."""
        root = part.path[: len(part.path) - len(part.key)] if part.path.endswith(part.key) else None
        root = (root.rstrip("/") or "/") if root else posixpath.dirname(part.path)
        if root not in self._scopes:
            self._scopes[root] = media_ingest.MediaScope(root, list(self.options.media_roots),
                                                         self.options.allow_external_media)
        return self._scopes[root]

    def _embedded(self, part: Part) -> bool:
        """Whether an HTML page or a JSON/JSONL records file in the media file's folder, or a folder
        above it up to the source root, embeds it (``<img src>``, an ``image``/``audio``/``video``
        field), so it is in that document already (``embedded_media: skip``)."""
        target = posixpath.normpath(part.path)
        folder = posixpath.dirname(part.path)
        root = part.path[: len(part.path) - len(part.key)].rstrip("/") if part.path.endswith(part.key) else folder
        while True:
            if folder not in self._refs:
                self._refs[folder] = self._references(folder)
            if target in self._refs[folder]:
                return True
            if len(folder) <= len(root) or posixpath.dirname(folder) == folder:
                return False
            folder = posixpath.dirname(folder)

    def _references(self, folder: str) -> set[str]:
        """Normalized uris of the media that the pages and records files directly in ``folder`` name."""
        refs: set[str] = set()
        for name in sorted(self.names(folder)):
            uri = f"{folder}/{name}"
            low = name.lower()
            try:
                if low.endswith((".html", ".htm", ".xhtml")):
                    found = media_ingest.html_media_refs(media_ingest.read_bytes(uri))
                elif low.endswith((".jsonl", ".ndjson", ".json")) and not media_ingest.is_caption(uri, self.names):
                    found = media_ingest.record_media_refs(media_ingest.read_bytes(uri))
                else:
                    continue
            except (OSError, ValueError):
                continue  # unreadable here: the read of that file reports it
            for ref in found:
                resolved = media_ingest.resolve_ref(ref, uri)
                if resolved is not None and not resolved.startswith("data:"):
                    refs.add(posixpath.normpath(resolved))
        return refs


class MediaFormat(InputFormat):
    """A media file: read as a media document with ``media: pass``, else quarantined."""

    detect: ClassVar[Detect] = "media"
    forceable = False

    def read(self, source: FilesSource, part: Part, kind: Kind, data: bytes | None, ctx: TaskContext
             ) -> Iterator[Document]:
        return source.media_reading.document(part, kind, ctx)


@INPUT_FORMATS.register("image")
class ImageFormat(MediaFormat):
    """Images (PNG, JPEG, GIF, WebP, BMP, TIFF, HEIC)."""

    extensions = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic")


@INPUT_FORMATS.register("audio")
class AudioFormat(MediaFormat):
    """Audio (WAV, MP3, FLAC, Ogg, Opus, M4A)."""

    extensions = (".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a")


@INPUT_FORMATS.register("video")
class VideoFormat(MediaFormat):
    """Video (MP4, MOV, MKV, WebM, AVI)."""

    extensions = (".mp4", ".mov", ".mkv", ".webm", ".avi")
