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
    source's root (what document ids are derived from); ``size`` and ``mtime`` fingerprint it.
    ``digest`` is the whole file's content hash when the manifest knows it (see ``manifest.py``)."""

    path: str
    key: str = ""
    start: int = 0
    end: int = -1
    size: int = 0
    mtime: float = 0.0
    digest: str = ""
    etag: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"path": self.path, "key": self.key, "start": self.start, "end": self.end, "size": self.size, "mtime": self.mtime}
        if self.digest:
            d["digest"] = self.digest
        if self.etag:
            d["etag"] = self.etag
        return d

    def identity(self) -> dict[str, Any]:
        """What decides whether this part must be read again: the content hash when known (so a
        touched-but-unchanged file is not redone), else size and modification time."""
        d = self.to_dict()
        if self.digest:
            del d["mtime"]
        return d


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

    def identity(self) -> dict[str, Any]:
        return {"source": self.source, "parts": [p.identity() for p in self.parts]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskInput:
        return cls(d["source"], tuple(Part(**p) for p in d["parts"]))


class Source(ABC):
    """A registered source type; its constructor arguments are its recipe options."""

    name: ClassVar[str] = "source"
    source_name: str
    # Whether parts are files whose content the manifest hashes (see manifest.py).
    hash_inputs: bool = False

    @abstractmethod
    def plan(self, task_bytes: int) -> list[TaskInput]:
        """Cut the input into tasks of about ``task_bytes`` each, in a deterministic order."""

    @abstractmethod
    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        """Yield the task's documents; quarantine (``ctx.quarantine``) what cannot be read."""
