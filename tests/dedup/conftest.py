from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def wiki_paragraphs() -> list[str]:
    """Real WikiText-2 paragraphs of 40+ words (test split)."""
    text = (DATA / "wikitext-2" / "test.txt").read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n") if len(p.split()) >= 40 and not p.strip().startswith("=")]
