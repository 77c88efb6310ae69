"""A roll-forward journal: new files under temporary names, renamed into place once the journal is written.

Until the journal exists nothing of the output has changed; once it exists, applying it again after
a crash finishes the same renames and deletions, so an edit of several files lands whole.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from corpusforge.layout import journal_temporary
from corpusforge.state import atomic_write_json, read_json


class Journal:
    """Temporary files beside their targets and paths to delete, committed as one journal file."""

    def __init__(self, output: Path, name: Path):
        self.output, self.path = output, output / name
        self.token = uuid.uuid4().hex[:8]
        self.renames: list[tuple[str, str]] = []
        self.deletes: list[str] = []

    def temp(self, final: Path) -> Path:
        """A temporary path (``.<name>.erase-<token>``) that becomes ``final`` when the journal is applied."""
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = journal_temporary(final, self.token)
        self.renames.append((self._rel(tmp), self._rel(final)))
        return tmp

    def delete(self, path: Path) -> None:
        """Delete ``path`` (a file or a folder) when the journal is applied."""
        self.deletes.append(self._rel(path))

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.output).as_posix()

    def discard(self) -> None:
        """Remove the temporary files of a journal that will not be committed."""
        for tmp, _ in self.renames:
            (self.output / tmp).unlink(missing_ok=True)

    def commit(self, extra: dict[str, Any]) -> None:
        """Flush the temporary files to disk, then write the journal with ``extra`` (for whoever finishes it)."""
        for tmp, _ in self.renames:
            with open(self.output / tmp, "rb") as fh:
                os.fsync(fh.fileno())
        atomic_write_json(self.path, {"renames": self.renames, "deletes": self.deletes, **extra})


def apply_journal(output: Path, name: Path) -> dict[str, Any]:
    """Do the renames and deletions of the journal ``output/name`` (idempotent); returns the journal."""
    j = read_json(output / name)
    for tmp, final in j["renames"]:
        if (output / tmp).exists():
            os.replace(output / tmp, output / final)
    for rel in j["deletes"]:
        path = output / rel
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return j
