"""Input formats: one registered reader class per file format, found by detected kind or extension.

A format says which file extensions it claims and how they are trusted (``detect``), whether a
file of it can be cut into tasks (``split``: by byte range of lines, or by Parquet row group),
whether its reader wants the whole file's bytes up front (``whole_file``), and ``read``: one part
of a file in, documents out, bad records quarantined. ``FilesSource`` lists, filters and plans
files, detects each one's kind (``corpusforge.extract.detect.sniff``) and hands the part to the
format registered under that kind. A new format is one module with one registered class::

    @INPUT_FORMATS.register("notebook")
    class NotebookFormat(DocumentFormat):
        extensions = (".ipynb",)
        detect = "name"
        def extract(self, raw, kind, path, opts): ...

The module must live in a component package (``corpusforge/sources`` or ``corpusforge/extract``,
or a plugin's ``corpusforge.plugins`` entry point) so ``load_builtins`` imports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from corpusforge.registry import Registry, load_builtins

if TYPE_CHECKING:
    from corpusforge.document import Document
    from corpusforge.extract.base import Extracted
    from corpusforge.extract.detect import Kind
    from corpusforge.extract.formats import ExtractOptions
    from corpusforge.observe.stats import TaskContext
    from corpusforge.sources.base import Part
    from corpusforge.sources.files import FilesSource

INPUT_FORMATS = Registry("input format")

# How a format's extensions are trusted by ``sniff`` (extract/detect.py), which reads bytes first:
#   name     the name decides for text content, before code and HTML are sniffed (JSONL, CSV, Markdown)
#   content  the name decides only when the bytes say nothing (HTML, XML, WARC)
#   magic    a binary format found by its bytes: text under its name is a ``mismatch`` (PDF, Parquet)
#   zip      a ZIP container (Office, EPUB, ODF): the name decides when the members do not
#   media    image/audio/video: binary bytes under its name are media, text under it a mismatch
#   ""       the name is not used by ``sniff`` (planning may still use it, see ``planned``)
Detect = Literal["", "name", "content", "magic", "zip", "media"]
Split = Literal["whole", "lines", "row_groups"]


class InputFormat:
    """One input format: its extensions, how a file of it may be cut, and its reader."""

    name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    detect: ClassVar[Detect] = ""
    # The extension alone decides this format at planning and where the bytes cannot be sniffed
    # (a byte range of a file, a damaged stream); a name no planned format claims is ``text``.
    planned: ClassVar[bool] = False
    split: ClassVar[Split] = "whole"
    whole_file: ClassVar[bool] = False  # read() gets the file's bytes (at most max_extract_bytes)
    forceable: ClassVar[bool] = True  # may be named by a source's ``format:`` option

    def splittable(self, source: FilesSource) -> bool:
        """Whether a byte range of a file of this format is a task of its own (line-based reads)."""
        return self.split == "lines"

    def forced_kind(self, path: str) -> Kind:
        """The kind of a file read as this format because the source's ``format:`` names it."""
        from corpusforge.extract.detect import Kind

        return Kind(self.name)

    def read(self, source: FilesSource, part: Part, kind: Kind, data: bytes | None, ctx: TaskContext
             ) -> Iterator[Document]:
        """The documents of ``part`` (``data``: its bytes when ``whole_file``, else None)."""
        raise NotImplementedError(f"input format {self.name!r} defines no read()")


class DocumentFormat(InputFormat):
    """A format whose file is one document, extracted from its whole bytes (HTML, PDF, DOCX ...)."""

    whole_file: ClassVar[bool] = True

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        """The file's text and metadata; ``ExtractionError`` says why there is none."""
        raise NotImplementedError(f"input format {self.name!r} defines no extract()")

    def metadata(self, source: FilesSource, part: Part, meta: dict[str, Any]) -> dict[str, Any]:
        """The document's metadata from the extracted one (code adds its path and license file)."""
        return meta

    def read(self, source: FilesSource, part: Part, kind: Kind, data: bytes | None, ctx: TaskContext
             ) -> Iterator[Document]:
        from corpusforge.extract.base import ExtractionError

        if data is None:
            data = source.read_bytes(part)
        try:
            out = self.extract(data, kind, part.path, source.extract_options(part))
        except ExtractionError as exc:
            ctx.quarantine(part.path, str(exc), None)
            return
        meta = {"format": kind.family, **out.metadata}
        if kind.mime:
            meta.setdefault("content_type", kind.mime)
        yield from source.documents_of(part, iter([(0, out.text, self.metadata(source, part, meta))]), {})


_cache: dict[str, Any] = {"n": -1}


def _tables() -> dict[str, Any]:
    """Lookup tables derived from the registry, rebuilt when a format is registered."""
    load_builtins()
    if _cache["n"] != len(INPUT_FORMATS._items):  # checked per file: no sorting of names here
        classes = {n: INPUT_FORMATS.get(n) for n in INPUT_FORMATS.names()}
        by_detect: dict[str, dict[str, str]] = {}
        planned: dict[str, str] = {}
        for n, cls in classes.items():
            for ext in cls.extensions:
                if cls.detect:
                    by_detect.setdefault(cls.detect, {}).setdefault(ext, n)
                if cls.planned:
                    planned.setdefault(ext, n)
        _cache.update(n=len(classes), readers={n: cls() for n, cls in classes.items()}, by_detect=by_detect,
                      planned=planned, detected={e: n for t in by_detect.values() for e, n in t.items()})
    return _cache


def reader(family: str) -> InputFormat:
    """The registered reader of a detected kind (``Kind.family``) or a forced ``format:``."""
    readers = _tables()["readers"]
    if family not in readers:
        INPUT_FORMATS.get(family, where="format")  # raises, naming the formats there are
    return readers[family]


def extension_kinds(detect: Detect) -> dict[str, str]:
    """``{extension: format}`` of the formats whose names ``sniff`` trusts as ``detect`` says."""
    return _tables()["by_detect"].get(detect, {})


def detected_kind(ext: str) -> str | None:
    """The format ``sniff`` associates with extension ``ext`` (any ``detect`` but ""), or None."""
    return _tables()["detected"].get(ext)


def planned_format(ext: str) -> str:
    """The format a file named with ``ext`` is planned as, without opening it (``text`` if none)."""
    return _tables()["planned"].get(ext, "text")


def forceable_formats() -> list[str]:
    """The values a files source's ``format:`` option takes besides ``auto``."""
    return [n for n, r in _tables()["readers"].items() if r.forceable]
