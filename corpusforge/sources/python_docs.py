"""The ``python_docs`` source: the documentation topics every CPython installation ships.

``pydoc_data.topics`` holds the language reference topics (prose and examples) that ``help()``
prints. Together with the standard library's sources it gives the demo real prose and real code
on any machine, offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import CorpusforgeError
from corpusforge.registry import SOURCES
from corpusforge.sources.base import Part, Source, TaskInput

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

URI = "python-docs://pydoc_data.topics"


def _topics() -> dict[str, str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise CorpusforgeError("this Python installation has no pydoc_data (documentation topics)") from None
    return topics


@SOURCES.register("python_docs")
class PythonDocsSource(Source):
    """One document per documentation topic of the running interpreter (one task)."""

    def __init__(self, name: str):
        self.source_name = name

    def plan(self, task_bytes: int) -> list[TaskInput]:
        size = sum(len(v.encode()) for v in _topics().values())
        return [TaskInput(self.source_name, (Part(URI, key="topics", size=size),))]

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        for i, (topic, text) in enumerate(sorted(_topics().items())):
            meta = {"topic": topic}
            yield Document(text, make_doc_id(f"{self.source_name}/topics", i, text), URI, i, meta)
