"""What every extractor returns, and how it says a file cannot be extracted."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


class ExtractionError(Exception):
    """A file that cannot be turned into text; the message is the quarantine reason."""


@dataclass
class Extracted:
    """The text of one file (or one record of it) and what was learned about it."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    offset: int = 0


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{module} is needed for this input; install it with: pip install 'corpusforge[{extra}]'"
        ) from None
