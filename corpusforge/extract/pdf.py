"""PDF text layer with pypdf: page count in metadata, passwords, image-only scans reported."""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from typing import Any

from corpusforge.extract.base import Extracted, ExtractionError, require

_PAD = re.compile(r" {3,}")
_GAP = re.compile(r"(?<=\S) {2}(?=\S)")


def _tidy_layout(text: str) -> str:
    """Layout-mode text without its column padding: runs of 3+ spaces become a tab."""
    lines = [_PAD.sub("\t", _GAP.sub(" ", line.strip())) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def page_text(page: Any, mode: str) -> str:
    """One page's text. ``layout`` keeps the visual reading order of tables and forms; ``auto``
    uses it unless it loses words that plain extraction finds (rotated text, some fonts)."""
    if mode == "plain":
        return (page.extract_text() or "").strip()
    try:
        layout = _tidy_layout(page.extract_text(extraction_mode="layout") or "")
    except (ValueError, KeyError, TypeError, IndexError, ZeroDivisionError):
        layout = ""
    if mode == "layout":
        return layout
    plain = (page.extract_text() or "").strip()
    lw, pw = Counter(layout.split()), Counter(plain.split())
    covered = sum((lw & pw).values())
    return layout if covered >= 0.98 * sum(pw.values()) else plain


def extract_pdf(raw: bytes, password: str | None = None, mode: str = "auto") -> Extracted:
    """Text of every page (pages separated by a blank line).

    An encrypted PDF opens with ``password`` (an empty user password is tried first); without
    one it raises "encrypted PDF (no password configured)". No extractable text on any page raises
    "no text layer" (an image-only scan, which needs OCR).
    """
    pypdf = require("pypdf", "extract")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns per malformed object
    try:
        reader = pypdf.PdfReader(io.BytesIO(raw), strict=False)
        encrypted = reader.is_encrypted
        if encrypted:
            # Like a viewer, try only an empty *user* password (1): an empty owner password (2)
            # would open files whose author meant them to need a password.
            if reader.decrypt("") != 1:
                if not password:
                    raise ExtractionError("encrypted PDF (no password configured)")
                reader = pypdf.PdfReader(io.BytesIO(raw), strict=False)
                if reader.decrypt(password) == 0:
                    raise ExtractionError("encrypted PDF (wrong password)")
        pages = [page_text(page, mode) for page in reader.pages]
    except ExtractionError:
        raise
    except pypdf.errors.DependencyError as exc:
        raise ExtractionError(f"encrypted PDF needs a crypto library ({exc}); pip install cryptography") from None
    except pypdf.errors.FileNotDecryptedError:
        raise ExtractionError("encrypted PDF (no password configured)") from None
    except (pypdf.errors.PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError) as exc:
        raise ExtractionError(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise ExtractionError(f"no text layer (image-only PDF, {len(pages)} pages; needs OCR)")
    meta: dict[str, object] = {"page_count": len(pages), "encrypted": encrypted}
    info = reader.metadata
    if info is not None:
        for key, name in (("/Title", "title"), ("/Author", "author")):
            value = info.get(key)
            if isinstance(value, str) and value.strip():
                meta[name] = value.strip()
    return Extracted(text, meta)
