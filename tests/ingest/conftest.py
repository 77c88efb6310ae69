from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.loopback import Server

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def hosts() -> Iterator[tuple[Server, Server]]:
    """Two loopback HTTP servers on different hosts (127.0.0.1 and 127.0.0.2), closed after the test."""
    a, b = Server("127.0.0.1"), Server("127.0.0.2")
    yield a, b
    a.close()
    b.close()
