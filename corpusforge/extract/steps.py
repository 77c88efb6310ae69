"""Extraction as a pipeline step, for records whose text is still raw HTML."""

from __future__ import annotations

from corpusforge.document import Document
from corpusforge.registry import register
from corpusforge.step import Mapper


@register("html_extract")
class HtmlExtract(Mapper):
    """Replace HTML in ``doc.text`` by its main text (trafilatura); keep title/language/url."""

    drop_reason = "no_main_text"

    def __init__(self, favor_precision: bool = True, url_field: str | None = "url"):
        self.favor_precision, self.url_field = favor_precision, url_field

    def map(self, doc: Document) -> Document | None:
        from corpusforge.extract.html import html_to_text

        url = doc.metadata.get(self.url_field) if self.url_field else None
        text, meta = html_to_text(doc.text, url if isinstance(url, str) else None, self.favor_precision)
        if not text.strip():
            return None
        for key in ("title", "language", "url"):
            if key in meta:
                doc.metadata.setdefault(key, meta[key])
        doc.text = text
        return doc
