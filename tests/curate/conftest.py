from pathlib import Path

import pytest

from corpusforge.document import Document

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def doc():
    def make(text: str) -> Document:
        return Document(text, id="t", source="test")

    return make
