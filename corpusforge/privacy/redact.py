"""The shared shape of span redactors (PII, secrets): find spans, count them, replace or drop."""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

from corpusforge.document import Document
from corpusforge.media.items import find_between
from corpusforge.observe.stats import TaskContext
from corpusforge.step import Mapper


class SpanRedactor(Mapper):
    """A mapper whose ``detector.find(text)`` returns sorted, non-overlapping spans with ``start``/``end``.

    Subclasses say how a span is written back (``placeholder``) and under which name it is counted
    (``kind_of``); the base class redacts, drops in ``mode: drop``, counts per kind in the stats
    and in ``doc.metadata[metadata_key]``, and records the decision with the number of spans as score.
    In a document carrying media the text between placeholders is searched piece by piece, so a
    replacement never swallows a placeholder (``media.items.find_between``).
    """

    reason_prefix: ClassVar[str] = "redacted"
    metadata_key: ClassVar[str] = "redacted"
    detector: Any
    mode: str
    write_metadata: bool = True

    @abstractmethod
    def placeholder(self, span: Any) -> str:
        """The text that replaces ``span``."""

    @abstractmethod
    def kind_of(self, span: Any) -> str:
        """The name ``span`` is counted under."""

    def redact(self, text: str, spans: list[Any]) -> str:
        parts, pos = [], 0
        for sp in spans:
            parts.append(text[pos:sp.start])
            parts.append(self.placeholder(sp))
            pos = sp.end
        parts.append(text[pos:])
        return "".join(parts)

    def finder(self, doc: Document) -> Any:
        """The span finder for ``doc`` (a subclass may pass document hints, e.g. its language)."""
        return self.detector.find

    def spans(self, doc: Document) -> list[Any]:
        """The spans to redact in ``doc`` (between its media placeholders when it has media)."""
        find = self.finder(doc)
        return find_between(find, doc.text) if doc.media else find(doc.text)

    def map(self, doc: Document) -> Document | None:
        spans = self.spans(doc)
        if not spans:
            return doc
        if self.mode == "drop":
            return None
        doc.text = self.redact(doc.text, spans)
        return doc

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        for doc in docs:
            spans = self.spans(doc)
            if not spans:
                yield doc
                continue
            counts = Counter(self.kind_of(sp) for sp in spans)
            for kind, n in counts.items():
                ctx.count(self, kind, n)
            reason = f"{self.reason_prefix}:" + ",".join(sorted(counts))
            if self.mode == "drop":
                ctx.drop(self, doc, reason, float(len(spans)))
                continue
            doc.text = self.redact(doc.text, spans)
            if self.write_metadata:
                doc.metadata[self.metadata_key] = dict(sorted(counts.items()))
            ctx.modified(self, doc, reason, float(len(spans)))
            yield doc
