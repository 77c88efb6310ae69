"""Unicode and whitespace normalization."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Literal

from corpusforge.document import Document
from corpusforge.registry import register
from corpusforge.step import Mapper

# C0/C1 control characters except tab and newline (which are whitespace we keep).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_END = re.compile("\r\n?|[\u2028\u2029\x85]")
_TRAILING_SPACE = re.compile("[ \t\u00a0\u3000]+$", re.MULTILINE)
_INNER_SPACE = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}")


@register("normalize")
class Normalize(Mapper):
    """Unicode normal form, line endings, control characters and surplus whitespace.

    Each rule has a switch. ``collapse_spaces`` is off by default because indentation carries
    meaning in code; ``max_blank_lines`` keeps at most that many consecutive empty lines.
    ``fix_mojibake`` (off by default; needs ftfy, ``pip install 'corpusforge[quality]'``) first
    repairs text decoded with the wrong codec ("donâ€™t" -> "don’t") with ``ftfy.fix_encoding``.
    """

    def __init__(
        self,
        form: Literal["NFC", "NFKC", "NFD", "NFKD", "none"] = "NFC",
        line_endings: bool = True,
        remove_control: bool = True,
        strip_trailing_spaces: bool = True,
        collapse_spaces: bool = False,
        max_blank_lines: int | None = 2,
        strip: bool = True,
        fix_mojibake: bool = False,
    ):
        self.form = form
        self.line_endings, self.remove_control = line_endings, remove_control
        self.strip_trailing_spaces, self.collapse_spaces = strip_trailing_spaces, collapse_spaces
        self.max_blank_lines, self.strip = max_blank_lines, strip
        self.fix_mojibake = fix_mojibake
        self._fix_encoding: Callable[[str], str] | None = None
        if max_blank_lines is not None and max_blank_lines < 0:
            raise ValueError("max_blank_lines must be >= 0 or null")
        # More than max_blank_lines empty lines = more than max_blank_lines + 1 newlines in a row.
        self._blank_lines = None if max_blank_lines is None else re.compile("\n{" + str(max_blank_lines + 2) + ",}")

    def setup(self, ctx: object) -> None:
        if self.fix_mojibake and self._fix_encoding is None:
            try:
                from ftfy import fix_encoding
            except ImportError as e:
                raise ImportError("normalize fix_mojibake needs ftfy: pip install 'corpusforge[quality]'") from e
            self._fix_encoding = fix_encoding

    def normalize(self, text: str) -> str:
        if self.fix_mojibake:
            if self._fix_encoding is None:
                self.setup(None)
            assert self._fix_encoding is not None
            text = self._fix_encoding(text)
        if self.form != "none" and not unicodedata.is_normalized(self.form, text):
            text = unicodedata.normalize(self.form, text)
        if self.line_endings:
            text = _LINE_END.sub("\n", text)
        if self.remove_control:
            text = _CONTROL.sub("", text)
        if self.strip_trailing_spaces:
            text = _TRAILING_SPACE.sub("", text)
        if self.collapse_spaces:
            text = _INNER_SPACE.sub(" ", text)
        if self._blank_lines is not None:
            text = self._blank_lines.sub("\n" * (self.max_blank_lines + 1), text)
        if self.strip:
            text = text.strip()
        return text

    def map(self, doc: Document) -> Document:
        new = self.normalize(doc.text)
        if new != doc.text:
            doc.text = new
        return doc
