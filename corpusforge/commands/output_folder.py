"""The local folder a command works on: an output folder as given, or the copy of an output at an
fsspec URL (``s3://bucket/run``), brought from and, for commands that change it, back to the store.

Reading commands (``trace``, ``diff``) copy only the top-level entries they read into a temporary
folder, so nothing stale can answer for the store. Changing commands (``erase``, ``card``) work on
the output's mirror (``corpusforge.remote``, the folder a run writes through): it is brought up to
date, files the store no longer holds are removed from it, and what the command changed is
published with ``RemoteOutput.push`` (data first, completion records last, deletions after).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from corpusforge.errors import CorpusforgeError
from corpusforge.remote import RemoteOutput, is_url
from corpusforge.state import is_temporary


def _top(rel: str) -> str:
    """The top-level entry of a relative path: ``train/`` for a folder's file, else the file."""
    head, sep, _ = rel.partition("/")
    return head + sep


def _sync(out: RemoteOutput, only: tuple[str, ...] | None, skip: tuple[str, ...]) -> None:
    """Make ``out.local`` hold what the store holds under the wanted top-level entries: download
    what differs and delete local files the store lacks (removed there, e.g. by an erasure
    elsewhere: a stale lineage table would trace a document that is gone)."""
    there = out.remote_files()
    if not there:
        raise CorpusforgeError(f"{out.url}: no such output (nothing stored under it)")

    def wanted(rel: str) -> bool:
        return not rel.startswith(skip) and (only is None or _top(rel) in only)

    out.pull(skip=tuple(sorted({_top(rel) for rel in there if not wanted(rel)})), files=there)
    if not out.local.is_dir():
        return
    for dirpath, _, files in os.walk(out.local):
        for f in files:
            path = Path(dirpath) / f
            rel = path.relative_to(out.local).as_posix()
            if not is_temporary(f) and wanted(rel) and rel not in there:  # a temporary: a concurrent writer's
                path.unlink()


@contextlib.contextmanager
def output_folder(output: str, *, only: tuple[str, ...] | None = None, write: bool = False,
                  skip: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a local folder holding ``output``.

    A local path is checked and yielded as is. For an fsspec URL, ``only`` names the top-level
    entries read (``("version.json",)``, ``("lineage/", "shard_index.json")``; None: all but
    ``skip``); with ``write`` the mirror is used and the block's changes are pushed to the store
    when it ends without an exception. A missing output is an error naming it, and an error the
    block raises names the URL rather than the local copy.
    """
    if not is_url(output):
        path = Path(output)
        if not path.is_dir():
            raise CorpusforgeError(f"{output}: no such output folder")
        yield path
        return
    remote: RemoteOutput | None = None
    try:
        if write:
            remote = RemoteOutput(output)
            _sync(remote, only, skip)
            before = remote.snapshot()
            yield remote.local
            remote.push(before)
            return
        with tempfile.TemporaryDirectory(prefix="corpusforge-read-") as tmp:
            remote = RemoteOutput(output, tmp)
            _sync(remote, only, skip)
            yield remote.local
    except CorpusforgeError as exc:
        # Errors name the output as the user gave it, not the local copy.
        if remote is not None:
            exc.args = tuple(str(a).replace(str(remote.local), output.rstrip("/")) for a in exc.args)
        raise
