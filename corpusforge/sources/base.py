"""The source interface: plan tasks by input, then read one task's documents."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from corpusforge.document import Document

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext


@dataclass(frozen=True)
class Part:
    """A piece of one input: bytes [start, end) of a line-based file, or row groups [start, end)
    of a Parquet file; ``end == -1`` means to the end. ``key`` is the path relative to the
    source's root (what document ids are derived from); ``size`` and ``mtime`` fingerprint it."""

    path: str
    key: str = ""
    start: int = 0
    end: int = -1
    size: int = 0
    mtime: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "key": self.key, "start": self.start, "end": self.end, "size": self.size, "mtime": self.mtime}


@dataclass(frozen=True)
class TaskInput:
    """What one task reads: parts of one source. Defined by input, never by worker count."""

    source: str
    parts: tuple[Part, ...]

    @property
    def nbytes(self) -> int:
        return sum(p.size for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "parts": [p.to_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskInput:
        return cls(d["source"], tuple(Part(**p) for p in d["parts"]))


class Source(ABC):
    """A registered source type; its constructor arguments are its recipe options."""

    name: ClassVar[str] = "source"
    source_name: str

    @abstractmethod
    def plan(self, task_bytes: int) -> list[TaskInput]:
        """Cut the input into tasks of about ``task_bytes`` each, in a deterministic order."""

    @abstractmethod
    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        """Yield the task's documents; quarantine (``ctx.quarantine``) what cannot be read."""
