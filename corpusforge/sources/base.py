"""The source interface: plan tasks by input, then read one task's documents."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

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


Refresh = Literal["always", "never", "ttl"]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"15m"``, ``"6h"``, ``"2d"`` or ``"1w"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        unit = _UNITS.get(text[-1:], None) if text else None
        try:
            seconds = float(text[:-1] if unit else text) * (unit or 1)
        except ValueError:
            raise ValueError(f"refresh_ttl {value!r} is not a duration such as 90, '15m', '6h' or '2d'") from None
    if seconds <= 0:
        raise ValueError("refresh_ttl must be > 0")
    return seconds


@dataclass(frozen=True)
class RefreshPolicy:
    """When a non-file source is checked for changes at plan time (see manifest.py): ``always``
    (every run computes the content fingerprint), ``never`` (the first fingerprint is kept; only
    ``--fresh`` re-reads), ``ttl`` (the fingerprint is re-computed once the last check is older
    than ``ttl`` seconds)."""

    mode: Refresh = "always"
    ttl: float = 0.0

    @classmethod
    def of(cls, refresh: Refresh, refresh_ttl: str | float | None) -> RefreshPolicy:
        if refresh not in ("always", "never", "ttl"):
            raise ValueError(f"refresh must be always, never or ttl, not {refresh!r}")
        if refresh == "ttl":
            if refresh_ttl is None:
                raise ValueError("refresh: ttl needs refresh_ttl (seconds or a duration such as '6h')")
            return cls("ttl", parse_duration(refresh_ttl))
        if refresh_ttl is not None:
            raise ValueError("refresh_ttl is only used with refresh: ttl")
        return cls(refresh)

    def due(self, checked: float | None, now: float) -> bool:
        """Whether a part last checked at ``checked`` (epoch seconds, None: never) is checked again."""
        if checked is None:
            return self.mode != "never"
        return self.mode == "always" or (self.mode == "ttl" and now - checked >= self.ttl)


# The largest document a source yields (UTF-8 bytes of its text); larger ones are quarantined with
# the reason. Steps hold a document's words and lines at once (a few times its size as Python
# objects): at 8 MB, a book-length text, the default steps stay under the documented 400 MB per worker.
DEFAULT_MAX_DOCUMENT_BYTES = 8 * 1024 * 1024

ReadMethod = Callable[["Source", TaskInput, "TaskContext"], Iterator[Document]]


def check_max_document_bytes(value: int | None) -> int:
    """The ``max_document_bytes`` option as a cap in bytes, -1 for ``null`` (no cap)."""
    if value is not None and value < 1:
        raise ValueError(f"max_document_bytes: {value} must be 1 or more (null: no limit)")
    return -1 if value is None else value


def capped(docs: Iterator[Document], cap: int, ctx: TaskContext) -> Iterator[Document]:
    """``docs`` without those over ``cap`` bytes of UTF-8 text, quarantined with the reason."""
    for doc in docs:
        n = len(doc.text)
        if n > cap or (4 * n > cap and len(doc.text.encode("utf-8", "surrogatepass")) > cap):
            ctx.quarantine(f"{doc.source} at {doc.offset}",
                           f"document too large: over {cap:,} bytes (max_document_bytes)", None)
            continue
        yield doc


def _checked(read: ReadMethod) -> ReadMethod:
    """``read`` with what every source shares: a document over the source's ``max_document_bytes``
    is quarantined, and ``source_name`` is put into every document's metadata (mixtures, caps per
    source and erasure go by it). The one place both are done, for every source."""
    @functools.wraps(read)
    def checked(self: Source, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        docs = read(self, task, ctx)
        if self.max_document_bytes >= 0:
            docs = capped(docs, self.max_document_bytes, ctx)
        if not self.stamps_source_name:
            yield from docs
            return
        name = self.source_name
        for doc in docs:
            doc.metadata["source_name"] = name
            yield doc

    checked.shared_checks = True  # type: ignore[attr-defined]
    return checked


class Source(ABC):
    """A registered source type; its constructor arguments are its recipe options.

    A source implements ``plan`` and ``read``. The base class wraps a subclass's ``read`` when the
    class is made (``_checked``): documents over ``max_document_bytes`` are quarantined and
    ``source_name`` is stamped into the metadata of every other one, so no source has to
    remember either. ``documents`` is what the pipeline takes; a subclass may not override it."""

    name: ClassVar[str] = "source"
    source_name: str
    # False for a source whose documents already carry the name they were first read under
    # (``documents``: an earlier corpusforge output), which must survive a re-read.
    stamps_source_name: ClassVar[bool] = True
    # The cap on a document's UTF-8 bytes (-1: none); sources with the option set it per instance.
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    # Whether parts are files whose content the manifest hashes (see manifest.py).
    hash_inputs: bool = False
    # Non-file sources set a policy and implement ``fingerprints``: their parts then get a digest of
    # the content fingerprint, so a changed database, page or dataset makes its task run again.
    refresh: RefreshPolicy | None = None
    part_noun: str = "parts"  # what the change line counts ("2 of 30 URLs: ...")

    @abstractmethod
    def plan(self, task_bytes: int) -> list[TaskInput]:
        """Cut the input into tasks of about ``task_bytes`` each, in a deterministic order."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "documents" in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides Source.documents(); implement read() instead "
                            "(documents() applies what every source shares)")
        read = cls.__dict__.get("read")
        if read is not None and not getattr(read, "shared_checks", False):
            cls.read = _checked(read)  # type: ignore[method-assign]

    @abstractmethod
    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        """Yield the task's documents; quarantine (``ctx.quarantine``) what cannot be read.
        ``source_name`` and ``max_document_bytes`` need no code here: the base class applies them."""

    def documents(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        """The task's documents as the pipeline takes them: ``read``'s, each stamped with
        ``source_name``, none over ``max_document_bytes``."""
        return self.read(task, ctx)

    def fingerprints(self, parts: list[Part], work: Path, since: float | None = None) -> list[dict[str, Any]]:
        """A cheap JSON summary of each part's current content (row count, validators, page hash);
        equal summaries mean unchanged content. ``work`` is this source's folder under ``_work``;
        ``since`` is when the last finished check was made (None: never). Called only for a source
        that sets ``refresh``, so one that sets it without this method is a programming error."""
        raise NotImplementedError(f"{type(self).__name__} sets a refresh policy but defines no fingerprints()")

    def describe_change(self, old: dict[str, Any], new: dict[str, Any]) -> str:
        """Why a part with fingerprint ``old`` is re-read now that it is ``new``, in a few words."""
        return "content changed"
