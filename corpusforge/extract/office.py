"""Office documents: DOCX, PPTX, XLSX (python-docx, python-pptx, openpyxl), EPUB and ODF.

Reading order is kept (paragraphs and tables of a DOCX as they appear; shapes of each slide,
then its notes). Legacy binary formats (DOC/XLS/PPT, RTF) are reported, never guessed at.

Every container is checked before a library parses it (``check_container``): the members'
declared sizes and the bytes they actually inflate to stay under the expansion limit, and an
OOXML part that declares a DTD is refused. Any parse error of a damaged or hostile file (ZIP,
XML, a library's own) becomes an ExtractionError, which the source quarantines.
"""

from __future__ import annotations

import functools
import io
import posixpath
import zipfile
import zlib
from typing import Any

from corpusforge.extract.base import Extracted, ExtractionError, require
from corpusforge.sources.compression import expansion_reason

# SyntaxError covers lxml's XMLSyntaxError and ElementTree's ParseError (openpyxl parses
# worksheets with the standard library); the libraries' own errors are added by ``_errors``.
_OFFICE_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, LookupError, ValueError, TypeError,
    AttributeError, OSError, SyntaxError, NotImplementedError, RecursionError,
)
_OOXML = ("DOCX", "PPTX", "XLSX")


@functools.cache
def _errors() -> tuple[type[BaseException], ...]:
    """``_OFFICE_ERRORS`` plus lxml's and the Office libraries' base errors, those installed (once)."""
    extra: list[type[BaseException]] = []
    for module, name in (("lxml.etree", "LxmlError"), ("docx.opc.exceptions", "OpcError"),
                         ("pptx.exc", "PythonPptxError"), ("openpyxl.utils.exceptions", "InvalidFileException")):
        try:
            extra.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return (*_OFFICE_ERRORS, *extra)


def check_container(raw: bytes, what: str, limit: int | None, stored: int) -> None:
    """Refuse a ZIP container (``what``: DOCX, EPUB ...) that would inflate past ``limit`` bytes,
    or an OOXML part that declares a DTD (OPC, ECMA-376 Part 2 rule M1.18: an error, since
    DTDs are how entity-expansion bombs work).

    The declared sizes are checked first, then every member is inflated in 64 KB pieces and
    counted (nothing is kept), so a lying header cannot get past either.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except _OFFICE_ERRORS as exc:
        raise ExtractionError(f"unreadable {what} ({type(exc).__name__}: {exc})") from None
    declared = sum(i.file_size for i in infos)
    if limit is not None and declared > limit:
        raise ExtractionError(f"{what} {expansion_reason(limit, stored)}; its members declare {declared} bytes")
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        xml = what in _OOXML and info.filename.lower().endswith((".xml", ".rels"))
        tail = b""
        try:
            with zf.open(info) as member:
                while chunk := member.read(1 << 16):
                    total += len(chunk)
                    if limit is not None and total > limit:
                        raise ExtractionError(f"{what} {expansion_reason(limit, stored)}; {info.filename} inflates past it")
                    if xml and b"<!DOCTYPE" in tail + chunk:
                        raise ExtractionError(f"{what} part {info.filename} declares a DTD (refused: entity expansion)")
                    tail = chunk[-16:]
        except _OFFICE_ERRORS as exc:
            raise ExtractionError(f"unreadable {what} ({info.filename}: {type(exc).__name__}: {exc})") from None


def _docx_blocks(container: Any, out: list[str]) -> None:
    from docx.table import Table

    for item in container.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                seen: set[int] = set()
                cells = []
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell appears once per grid column
                        continue
                    seen.add(id(cell._tc))
                    inner: list[str] = []
                    _docx_blocks(cell, inner)
                    cells.append("\n".join(inner).strip())
                line = "\t".join(c for c in cells if c)
                if line:
                    out.append(line)
        else:
            text = item.text.strip()
            if text:
                out.append(text)


def extract_docx(raw: bytes, limit: int | None = None, stored: int = 0) -> Extracted:
    """Paragraphs and tables in reading order; ``limit``/``stored`` as in ``check_container``."""
    docx = require("docx", "extract")
    check_container(raw, "DOCX", limit, stored or len(raw))
    try:
        document = docx.Document(io.BytesIO(raw))
        blocks: list[str] = []
        _docx_blocks(document, blocks)
        title = document.core_properties.title
    except _errors() as exc:
        raise ExtractionError(f"unreadable DOCX ({type(exc).__name__}: {exc})") from None
    if not blocks:
        raise ExtractionError("DOCX has no text")
    meta = {"title": title} if title else {}
    return Extracted("\n\n".join(blocks), meta)


def _pptx_shape_text(shape: Any, out: list[str]) -> None:
    if shape.shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
        for sub in shape.shapes:
            _pptx_shape_text(sub, out)
        return
    if getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            cells = [c.text.strip() for c in row.cells if not c.is_spanned and c.text.strip()]
            if cells:
                out.append("\t".join(cells))
        return
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        text = shape.text_frame.text.strip()
        if text:
            out.append(text)


def extract_pptx(raw: bytes, limit: int | None = None, stored: int = 0) -> Extracted:
    """Each slide's shapes, tables and notes; ``limit``/``stored`` as in ``check_container``."""
    pptx = require("pptx", "extract")
    check_container(raw, "PPTX", limit, stored or len(raw))
    try:
        prs = pptx.Presentation(io.BytesIO(raw))
        slides: list[str] = []
        for slide in prs.slides:
            parts: list[str] = []
            for shape in slide.shapes:
                _pptx_shape_text(shape, parts)
            if slide.has_notes_slide:
                notes = slide.notes_slide.notes_text_frame
                if notes is not None and notes.text.strip():
                    parts.append(notes.text.strip())
            if parts:
                slides.append("\n\n".join(parts))
        n_slides = len(prs.slides)
    except _errors() as exc:
        raise ExtractionError(f"unreadable PPTX ({type(exc).__name__}: {exc})") from None
    if not slides:
        raise ExtractionError("PPTX has no text")
    return Extracted("\n\n".join(slides), {"slide_count": n_slides})


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def extract_xlsx(raw: bytes, limit: int | None = None, stored: int = 0) -> Extracted:
    """Each sheet as its name then one line per non-empty row, cells separated by tabs."""
    openpyxl = require("openpyxl", "extract")
    check_container(raw, "XLSX", limit, stored or len(raw))
    try:
        wb = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        sheets: list[str] = []
        for ws in wb.worksheets:
            rows = []
            for row in ws.iter_rows(values_only=True):
                cells = [_cell(v) for v in row]
                if any(cells):
                    rows.append("\t".join(cells).rstrip("\t"))
            if rows:
                sheets.append(ws.title + "\n" + "\n".join(rows))
        names = wb.sheetnames
        wb.close()
    except _errors() as exc:
        raise ExtractionError(f"unreadable XLSX ({type(exc).__name__}: {exc})") from None
    if not sheets:
        raise ExtractionError("XLSX has no cell values")
    return Extracted("\n\n".join(sheets), {"sheets": names})


def _xml_text(data: bytes, html: bool) -> str:
    from lxml import etree
    from lxml import html as lhtml

    if html:
        root = lhtml.fromstring(data)
        for bad in root.xpath("//script|//style|//head"):
            bad.getparent().remove(bad)
        blocks = root.xpath("//h1|//h2|//h3|//h4|//h5|//h6|//p|//li|//pre|//td|//blockquote")
        texts = [" ".join(b.text_content().split()) for b in blocks]
        text = "\n\n".join(t for t in texts if t)
        return text or " ".join(root.text_content().split())
    root = etree.fromstring(data, _safe_parser(recover=True))
    if root is None:
        return ""
    blocks = root.iter(f"{{{_ODF_TEXT}}}p", f"{{{_ODF_TEXT}}}h")
    return "\n\n".join(t for t in (_odf_inline(b).strip() for b in blocks) if t)


_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_SPACE = {f"{{{_ODF_TEXT}}}tab": "\t", f"{{{_ODF_TEXT}}}line-break": "\n"}


def _odf_inline(el: Any) -> str:
    """Text of an ODF paragraph with its tab, space-run (text:s) and line-break elements."""
    out = [el.text or ""]
    for child in el:
        if child.tag in _ODF_SPACE:
            out.append(_ODF_SPACE[child.tag])
        elif child.tag == f"{{{_ODF_TEXT}}}s":
            out.append(" " * int(child.get(f"{{{_ODF_TEXT}}}c", "1")))
        elif isinstance(child.tag, str):
            out.append(_odf_inline(child))
        out.append(child.tail or "")
    return "".join(out)


def _safe_parser(recover: bool = False) -> Any:
    """An lxml parser that expands no entities, fetches nothing and keeps libxml2's size limits."""
    from lxml import etree

    return etree.XMLParser(recover=recover, resolve_entities=False, no_network=True, huge_tree=False)


def extract_epub(raw: bytes, limit: int | None = None, stored: int = 0) -> Extracted:
    """Chapters in spine order (from the OPF package file), each as readable paragraphs."""
    require("lxml", "extract")
    check_container(raw, "EPUB", limit, stored or len(raw))
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        container = _fromstring(zf.read("META-INF/container.xml"))
        opf_path = container.xpath("//*[local-name()='rootfile']/@full-path")[0]
        opf = _fromstring(zf.read(opf_path))
        base = posixpath.dirname(opf_path)
        items = {i.get("id"): i.get("href") for i in opf.xpath("//*[local-name()='item']")}
        order = [items[r] for r in opf.xpath("//*[local-name()='itemref']/@idref") if r in items]
        title = opf.xpath("string(//*[local-name()='title'])").strip()
        chapters = []
        for href in order:
            name = posixpath.normpath(posixpath.join(base, href)) if base else href
            text = _xml_text(zf.read(name), html=True)
            if text:
                chapters.append(text)
    except _errors() as exc:
        raise ExtractionError(f"unreadable EPUB ({type(exc).__name__}: {exc})") from None
    if not chapters:
        raise ExtractionError("EPUB has no text")
    return Extracted("\n\n".join(chapters), {"title": title} if title else {})


def _fromstring(data: bytes) -> Any:
    """``lxml.etree.fromstring`` with ``_safe_parser``."""
    from lxml import etree

    return etree.fromstring(data, _safe_parser())


def extract_odf(raw: bytes, limit: int | None = None, stored: int = 0) -> Extracted:
    """ODT/ODS/ODP paragraphs and headings, with their tabs, spaces and line breaks."""
    require("lxml", "extract")
    check_container(raw, "OpenDocument file", limit, stored or len(raw))
    try:
        text = _xml_text(zipfile.ZipFile(io.BytesIO(raw)).read("content.xml"), html=False)
    except _errors() as exc:
        raise ExtractionError(f"unreadable OpenDocument file ({type(exc).__name__}: {exc})") from None
    if not text.strip():
        raise ExtractionError("OpenDocument file has no text")
    return Extracted(text)


def legacy_office(kind: str) -> ExtractionError:
    target = {"DOC": "DOCX", "XLS": "XLSX", "PPT": "PPTX", "RTF": "DOCX"}.get(kind, "DOCX/XLSX/PPTX")
    return ExtractionError(
        f"legacy Office format ({kind}): not supported; convert it to {target} "
        f"(libreoffice --headless --convert-to {target.lower().split('/')[0]})"
    )
