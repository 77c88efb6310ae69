"""Document: the one thing that flows through every step."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import xxhash


def make_doc_id(source_key: str, offset: int, text: str) -> str:
    """Stable id from where a document came from and what it says (16 hex chars, xxh3-64).

    Ids must not depend on the machine or the run, so ``source_key`` is the source name plus the
    path relative to that source's root, never an absolute path.
    """
    return DocIdHasher(source_key)(offset, text)


class DocIdHasher:
    """``make_doc_id`` for many documents of one source key, in one hashing call per document
    over key, offset and text concatenated (the same bytes as three updates). Key and offset are
    packed by one ``struct`` call (key bytes, then the offset as 8 bytes little-endian signed),
    cheaper than concatenating the key with a packed offset."""

    def __init__(self, source_key: str):
        key = source_key.encode("utf-8", "surrogatepass")
        self._key = key
        self._head = struct.Struct(f"<{len(key)}sq").pack

    def __call__(self, offset: int, text: str) -> str:
        try:
            data = text.encode()
        except UnicodeEncodeError:  # lone surrogates: hashed as their surrogatepass bytes
            data = text.encode("utf-8", "surrogatepass")
        return _hexdigest(self._head(self._key, offset) + data)


_hexdigest = xxhash.xxh3_64_hexdigest


@dataclass(slots=True)
class Document:
    """A unit of training data with its provenance.

    ``source`` is the uri of the input file (or record source) and ``offset`` the line, row or byte
    offset of the record inside it, so every sample can be traced back. ``text`` may be replaced by
    mappers; the word and line views are derived lazily and dropped when the text changes.
    """

    _text: str
    id: str
    source: str
    offset: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    media: list[Any] | None = None
    _words: list[str] | None = field(default=None, repr=False, compare=False)
    _lines: list[str] | None = field(default=None, repr=False, compare=False)

    def __init__(
        self,
        text: str,
        id: str,
        source: str,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
        media: list[Any] | None = None,
    ):
        self._text = text
        self.id = id
        self.source = source
        self.offset = offset
        self.metadata = {} if metadata is None else metadata
        self.media = media
        self._words = None
        self._lines = None

    @property
    def text(self) -> str:
        return self._text

    @text.setter
    def text(self, value: str) -> None:
        self._text = value
        self._words = None
        self._lines = None

    @property
    def words(self) -> list[str]:
        """Whitespace-separated words, computed once per text and shared by every step."""
        if self._words is None:
            self._words = self._text.split()
        return self._words

    @property
    def lines(self) -> list[str]:
        """Lines of the text without their line endings, computed once per text."""
        if self._lines is None:
            self._lines = self._text.splitlines()
        return self._lines
