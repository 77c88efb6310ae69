"""The progress display of a run: one line per stage, on stderr, off under ``--quiet``.

Task stages count tasks (``3/16``); the tokenizer stage, one long task in the driver, counts the
characters of its training sample as they are read (``12.3/20.0 M chars``), then shows its
training phase with a pulsing bar until the tokenizer is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

CHARS = "chars"  # a task field: the task counts characters, not tasks


class _CountColumn(ProgressColumn):
    """``3/16`` for a stage's tasks, ``12.3/20.0 M chars`` for characters read."""

    def __init__(self) -> None:
        super().__init__()
        self._tasks = MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        if not task.fields.get(CHARS):
            return self._tasks.render(task)
        done = f"{task.completed / 1e6:.1f}"
        return Text(f"{done}/{task.total / 1e6:.1f} M chars" if task.total else f"{done} M chars",
                    style="progress.download")


class StageProgress(Progress):
    """``rich`` progress with the run's columns. A run that fails leaves no bar behind, so its last
    line on stderr is its error (a bar is otherwise printed once at the end where stderr is a file)."""

    def __init__(self, console: Console, enabled: bool = True):
        super().__init__(TextColumn("{task.description:<12}"), BarColumn(), _CountColumn(), TimeElapsedColumn(),
                         console=console, disable=not enabled, transient=False)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.live.transient = True
        super().__exit__(exc_type, exc, tb)


def counted_texts(texts: Iterable[str], bar: Progress, task: TaskID, phase: str) -> Iterator[str]:
    """``texts``, advancing ``task`` by each one's characters; once they are all read, the task
    becomes ``phase`` (e.g. ``tokenizer (training)``) with a pulsing bar, since the trainer reports
    nothing while it works."""
    for text in texts:
        bar.advance(task, len(text))
        yield text
    to_phase(bar, task, phase)


def to_phase(bar: Progress, task: TaskID, phase: str) -> None:
    """Show ``task`` as ``phase`` with a pulsing bar (no total: ``Progress.update`` cannot clear one)."""
    bar.update(task, description=phase)
    for t in bar.tasks:
        if t.id == task:
            t.total = None
