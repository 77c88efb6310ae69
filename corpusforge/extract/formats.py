"""One file's bytes and detected kind to one extracted document (or the reason it has none)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpusforge.extract.base import Extracted, ExtractionError
from corpusforge.extract.detect import CODE_EXTENSIONS, Kind, extension
from corpusforge.sources.compression import (
    DEFAULT_EXPANSION_FLOOR_BYTES,
    DEFAULT_MAX_EXPANSION_RATIO,
    expansion_limit,
)

# Families read whole and turned into one document by ``extract_document``.
DOCUMENT_FAMILIES = frozenset(
    {"html", "xml", "markdown", "rst", "code", "pdf", "docx", "pptx", "xlsx", "epub", "odf",
     "legacy_office", "archive", "mismatch", "notebook"}
)
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
    fam = kind.family
    if fam == "html":
        from corpusforge.extract.html import extract_html

        return extract_html(raw, None, None, opts.favor_precision)
    if fam == "pdf":
        from corpusforge.extract.pdf import extract_pdf

        return extract_pdf(raw, opts.pdf_password, opts.pdf_mode)
    if fam in ("docx", "pptx", "xlsx", "epub", "odf"):
        from corpusforge.extract import office

        stored = opts.compressed_bytes or len(raw)
        limit = expansion_limit(stored, opts.max_expansion_ratio, opts.expansion_floor_bytes)
        return getattr(office, f"extract_{fam}")(raw, limit, stored)
    if fam == "notebook":
        from corpusforge.extract.notebook import extract_notebook

        return extract_notebook(raw)
    if fam == "legacy_office":
        from corpusforge.extract.office import legacy_office

        raise legacy_office(kind.language)
    if fam == "archive":
        raise ExtractionError("ZIP archive: not supported; unpack it into the source folder")
    if fam == "mismatch":
        raise ExtractionError(
            f"content does not match the file name ({extension(path)} says {kind.language}, the bytes are text)"
        )
    if fam == "xml":
        from corpusforge.extract.markup import xml_to_text

        text = xml_to_text(raw)
        if not text.strip():
            raise ExtractionError("XML has no text")
        return Extracted(text, {"format": "xml"})
    from corpusforge.extract.charset import UndetectedEncoding, decode_text

    try:
        text, used = decode_text(raw, opts.encoding, "replace" if opts.encoding_errors == "replace" else "strict")
    except UnicodeDecodeError as exc:
        raise ExtractionError(f"invalid {opts.encoding if opts.encoding != 'auto' else 'UTF-8'} at byte {exc.start}") from None
    except UndetectedEncoding as exc:
        raise ExtractionError(str(exc)) from None
    if not text.strip():
        raise ExtractionError("empty file")
    enc = {} if used == "utf-8" else {"encoding": used}
    if fam in ("markdown", "rst"):
        from corpusforge.extract.markup import extract_markup

        out = extract_markup(text, fam)
        out.metadata.update(enc)
        return out
    if fam == "code":
        return Extracted(text, {"language": kind.language or CODE_EXTENSIONS.get(extension(path), "unknown"), **enc})
    raise ExtractionError(f"no extractor for {fam}")


def is_license_file(name: str) -> bool:
    return bool(_LICENSE.match(name.rsplit("/", 1)[-1]))
