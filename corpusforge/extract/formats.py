"""The built-in document formats (one file, one document) and ``extract_document``, which runs the
extractor registered for a detected kind: HTML, XML, Markdown, reStructuredText, code, PDF,
DOCX, PPTX, XLSX, EPUB, ODF; legacy Office files and name/content mismatches are refused with
the reason. Each is an ``InputFormat`` (see ``corpusforge.sources.input_formats``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from corpusforge.extract.base import Extracted, ExtractionError
from corpusforge.extract.detect import CODE_EXTENSIONS, Kind, extension
from corpusforge.sources.compression import (
    DEFAULT_EXPANSION_FLOOR_BYTES,
    DEFAULT_MAX_EXPANSION_RATIO,
    expansion_limit,
)
from corpusforge.sources.input_formats import INPUT_FORMATS, Detect, DocumentFormat, reader

if TYPE_CHECKING:
    from corpusforge.sources.base import Part
    from corpusforge.sources.files import FilesSource

_LICENSE = re.compile(r"^(?:licen[cs]e|copying|unlicense)(?:[-_.].*)?$", re.I)


@dataclass(frozen=True)
class ExtractOptions:
    """How to extract. A ZIP container (Office, EPUB, ODF) may decompress to
    ``expansion_limit(compressed_bytes, max_expansion_ratio, expansion_floor_bytes)`` bytes;
    ``compressed_bytes`` is the file's size as stored (0: the size of the bytes given)."""

    pdf_password: str | None = None
    favor_precision: bool = True
    pdf_mode: str = "auto"
    encoding_errors: str = "quarantine"
    max_expansion_ratio: float | None = DEFAULT_MAX_EXPANSION_RATIO
    expansion_floor_bytes: int = DEFAULT_EXPANSION_FLOOR_BYTES
    compressed_bytes: int = 0
    encoding: str = "auto"


def extract_document(raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
    """Extract one document of ``kind`` from ``raw``; ExtractionError says why not."""
    fmt = reader(kind.family) if kind.family in INPUT_FORMATS else None
    if not isinstance(fmt, DocumentFormat):
        decoded(raw, opts)  # undecodable or empty bytes say so first, as for a text format
        raise ExtractionError(f"no extractor for {kind.family}")
    return fmt.extract(raw, kind, path, opts)


def decoded(raw: bytes, opts: ExtractOptions) -> tuple[str, dict[str, Any]]:
    """The text of ``raw`` in the configured encoding, and ``{"encoding": ...}`` unless UTF-8."""
    from corpusforge.extract.charset import UndetectedEncoding, decode_text

    try:
        text, used = decode_text(raw, opts.encoding, "replace" if opts.encoding_errors == "replace" else "strict")
    except UnicodeDecodeError as exc:
        raise ExtractionError(f"invalid {opts.encoding if opts.encoding != 'auto' else 'UTF-8'} at byte {exc.start}") from None
    except UndetectedEncoding as exc:
        raise ExtractionError(str(exc)) from None
    if not text.strip():
        raise ExtractionError("empty file")
    return text, ({} if used == "utf-8" else {"encoding": used})


@INPUT_FORMATS.register("html")
class HtmlFormat(DocumentFormat):
    """HTML pages: main text by trafilatura; with ``media: pass`` its media in document order."""

    extensions = (".html", ".htm", ".xhtml")
    detect: ClassVar[Detect] = "content"

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        from corpusforge.extract.html import extract_html

        return extract_html(raw, None, None, opts.favor_precision)

    def read(self, source: FilesSource, part: Part, kind: Kind, data: bytes | None, ctx: Any) -> Any:
        if data is None:
            data = source.read_bytes(part)
        if source.media_reading.wants_html(data):
            return source.media_reading.html(part, data, ctx)
        return super().read(source, part, kind, data, ctx)


@INPUT_FORMATS.register("xml")
class XmlFormat(DocumentFormat):
    """XML (and SVG): the character data of its elements."""

    extensions = (".xml", ".svg")
    detect: ClassVar[Detect] = "content"

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        from corpusforge.extract.markup import xml_to_text

        text = xml_to_text(raw)
        if not text.strip():
            raise ExtractionError("XML has no text")
        return Extracted(text, {"format": "xml"})


@INPUT_FORMATS.register("markdown")
class MarkdownFormat(DocumentFormat):
    """Markdown, its markup reduced to text (extract/markup.py)."""

    extensions = (".md", ".markdown", ".mdx")
    detect: ClassVar[Detect] = "name"

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        from corpusforge.extract.markup import extract_markup

        text, enc = decoded(raw, opts)
        out = extract_markup(text, self.name)
        out.metadata.update(enc)
        return out


@INPUT_FORMATS.register("rst")
class RstFormat(MarkdownFormat):
    """reStructuredText, its markup reduced to text."""

    extensions = (".rst", ".rest")


@INPUT_FORMATS.register("code")
class CodeFormat(DocumentFormat):
    """Source code, verbatim, with its language (extension, file name or shebang) and license file."""

    extensions = tuple(CODE_EXTENSIONS)

    def forced_kind(self, path: str) -> Kind:
        return Kind(self.name, language=CODE_EXTENSIONS.get(extension(path), ""))

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        text, enc = decoded(raw, opts)
        return Extracted(text, {"language": kind.language or CODE_EXTENSIONS.get(extension(path), "unknown"), **enc})

    def metadata(self, source: FilesSource, part: Part, meta: dict[str, Any]) -> dict[str, Any]:
        meta["path"] = part.key
        license_file = source.license_file(part)
        if license_file:
            meta["license_file"] = license_file
        return meta


@INPUT_FORMATS.register("pdf")
class PdfFormat(DocumentFormat):
    """PDF: text by pypdfium2 (``pdf_mode``), encrypted files opened with ``pdf_password``."""

    extensions = (".pdf",)
    detect: ClassVar[Detect] = "magic"

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        from corpusforge.extract.pdf import extract_pdf

        return extract_pdf(raw, opts.pdf_password, opts.pdf_mode)


class _ZipDocument(DocumentFormat):
    """A ZIP container format, inflated within the expansion limit of its stored size."""

    detect: ClassVar[Detect] = "zip"

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        from corpusforge.extract import office

        stored = opts.compressed_bytes or len(raw)
        limit = expansion_limit(stored, opts.max_expansion_ratio, opts.expansion_floor_bytes)
        return getattr(office, f"extract_{self.name}")(raw, limit, stored)


@INPUT_FORMATS.register("docx")
class DocxFormat(_ZipDocument):
    """Word documents."""

    extensions = (".docx",)


@INPUT_FORMATS.register("pptx")
class PptxFormat(_ZipDocument):
    """PowerPoint slides."""

    extensions = (".pptx",)


@INPUT_FORMATS.register("xlsx")
class XlsxFormat(_ZipDocument):
    """Excel workbooks."""

    extensions = (".xlsx", ".xlsm")


@INPUT_FORMATS.register("epub")
class EpubFormat(_ZipDocument):
    """EPUB books."""

    extensions = (".epub",)


@INPUT_FORMATS.register("odf")
class OdfFormat(_ZipDocument):
    """OpenDocument text, slides and spreadsheets."""

    extensions = (".odt", ".odp", ".ods")


@INPUT_FORMATS.register("legacy_office")
class LegacyOfficeFormat(DocumentFormat):
    """DOC, XLS, PPT and RTF: refused with the command that converts them."""

    extensions = (".doc", ".xls", ".ppt")
    detect: ClassVar[Detect] = "magic"
    forceable = False

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        from corpusforge.extract.office import legacy_office

        raise legacy_office(kind.language)


@INPUT_FORMATS.register("mismatch")
class MismatchFormat(DocumentFormat):
    """Text bytes under a binary format's name: refused, naming both."""

    forceable = False

    def extract(self, raw: bytes, kind: Kind, path: str, opts: ExtractOptions) -> Extracted:
        raise ExtractionError(
            f"content does not match the file name ({extension(path)} says {kind.language}, the bytes are text)"
        )


def is_license_file(name: str) -> bool:
    return bool(_LICENSE.match(name.rsplit("/", 1)[-1]))
