"""Outputs on an fsspec URL (``s3://``, ``gs://``, ``az://``, ...): tasks write a local mirror, which
is published to the store object by object.

Every stage writes its files as it does locally, into a mirror folder (the same path on every
machine: ``$CORPUSFORGE_MIRROR_DIR`` or the system temp folder, then a hash of the URL). Before a
task runs, the mirror is brought up to date from the store (files missing locally or of another
size are downloaded); after it, what the task added or changed is uploaded, each file in one
``put`` (a single PUT, or a multipart upload that appears only when complete), and its completion
record last, so a record in the store always follows the data it describes. A run on another
machine, or after the mirror was deleted, resumes from the store; a run first uploads what its
mirror holds and the store lacks, so uploads cut short by a failed run are completed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from corpusforge.errors import CorpusforgeError

STATE = "_state/"


def is_url(path: str | os.PathLike[str] | None) -> bool:
    """True for ``scheme://...`` outputs other than local ``file://`` ones."""
    s = str(path or "")
    return "://" in s and not s.startswith("file://")


def mirror_dir(url: str) -> Path:
    """Where the mirror of ``url`` lives on this machine (the same path on every machine by default)."""
    root = Path(os.environ.get("CORPUSFORGE_MIRROR_DIR") or Path(tempfile.gettempdir()) / "corpusforge-mirror")
    return root / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def _modified(info: dict[str, Any]) -> float | None:
    """An object's modification time (epoch seconds) from an fsspec listing entry, if it has one."""
    for key in ("LastModified", "mtime", "updated", "last_modified"):
        v = info.get(key)
        if isinstance(v, datetime):
            return v.timestamp()
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str) and v:
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and ".tmp-" in name


class RemoteOutput:
    """The output ``url`` and its local mirror ``local``; ``pull`` and ``push`` keep them in step."""

    def __init__(self, url: str, local: str | os.PathLike[str] | None = None):
        from fsspec.core import url_to_fs

        self.url = url.rstrip("/")
        try:
            self.fs, self.root = url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise CorpusforgeError(f"output {self.url}: no filesystem for this URL ({exc}); for s3:// install "
                                   "'corpusforge[remote]'") from None
        self.root = self.root.rstrip("/")
        self.local = Path(local) if local is not None else mirror_dir(self.url)

    def remote_files(self) -> dict[str, tuple[int, float | None]]:
        """Every object under the output in the store: relative path -> (size, modified or None)."""
        # Listings are cached per filesystem instance, which fsspec shares in a process: a worker
        # must see what other machines wrote since its last task.
        self.fs.invalidate_cache(self.root)
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return {}
        prefix = self.root + "/"
        return {p[len(prefix):]: (int(info.get("size") or 0), _modified(info)) for p, info in found.items()
                if p.startswith(prefix) and info.get("type", "file") != "directory"}

    def pull(self, skip: tuple[str, ...] = ()) -> int:
        """Download what the mirror lacks, or holds at another size and older than the store's;
        returns how many files came. A newer local file is a task's output not yet uploaded (by a
        concurrent task on this machine): it is never replaced by the store's older one."""
        n = 0
        for rel, (size, modified) in sorted(self.remote_files().items()):
            if rel.startswith(skip):
                continue
            dst = self.local / rel
            try:
                st = dst.stat()
                if st.st_size == size or (modified is not None and st.st_mtime >= modified):
                    continue
            except FileNotFoundError:
                pass
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.tmp-{uuid.uuid4().hex[:8]}")
            try:
                self.fs.get_file(f"{self.root}/{rel}", str(tmp))
                os.replace(tmp, dst)
            finally:
                if tmp.exists():
                    tmp.unlink()
            n += 1
        return n

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Relative path -> (size, mtime_ns) of every finished file in the mirror."""
        out: dict[str, tuple[int, int]] = {}
        if not self.local.exists():
            return out
        for dirpath, _, files in os.walk(self.local):
            for f in files:
                if _is_temporary(f):
                    continue
                p = os.path.join(dirpath, f)
                try:
                    st = os.stat(p)
                except FileNotFoundError:
                    continue  # replaced or removed by a concurrent task meanwhile
                out[os.path.relpath(p, self.local).replace(os.sep, "/")] = (st.st_size, st.st_mtime_ns)
        return out

    def push(self, before: dict[str, tuple[int, int]], records: set[str] | None = None) -> int:
        """Upload what changed since ``before`` and delete what went; completion records last.

        ``records``: the only ``_state/`` files to upload (a task's own record), so a task never
        publishes the record of a concurrent task on this machine before that task's data.
        """
        after = self.snapshot()
        changed = sorted(rel for rel, sig in after.items() if before.get(rel) != sig)
        data = [r for r in changed if not r.startswith(STATE)]
        state = [r for r in changed if r.startswith(STATE) and (records is None or r in records)]
        for rel in data + state:
            try:
                self.fs.put_file(str(self.local / rel), f"{self.root}/{rel}")
            except FileNotFoundError:
                if (self.local / rel).exists():
                    raise
        for rel in sorted(set(before) - set(after)):
            try:
                self.fs.rm_file(f"{self.root}/{rel}")
            except FileNotFoundError:
                pass
        return len(data) + len(state)

    def push_missing(self) -> int:
        """Upload what the mirror has and the store lacks (or holds at another size), records last:
        repairs a store whose uploads an earlier, failed run on this machine left unfinished."""
        there = self.remote_files()
        here = self.snapshot()
        missing = sorted(rel for rel, (size, _) in here.items() if there.get(rel, (None,))[0] != size)
        for rel in [r for r in missing if not r.startswith(STATE)] + [r for r in missing if r.startswith(STATE)]:
            self.fs.put_file(str(self.local / rel), f"{self.root}/{rel}")
        return len(missing)

    def clear(self) -> None:
        """Delete the output in the store and its mirror (``--fresh``): only a corpusforge output
        (its marker in the store) holding nothing corpusforge did not write, else ``OutputRefused``."""
        from corpusforge.state import OutputRefused, deletion_refusal

        files = self.remote_files()
        names = {rel.split("/", 1)[0] for rel in files}
        in_state = {rel[len(STATE):].split("/", 1)[0] for rel in files if rel.startswith(STATE)}

        def read_text(rel: str) -> str | None:
            return self.fs.cat_file(f"{self.root}/{rel}").decode("utf-8", "replace") if rel in files else None

        why = deletion_refusal(self.url, names, in_state, read_text)
        if why:
            raise OutputRefused(why)
        if files:
            self.fs.rm(self.root, recursive=True)
        if self.local.exists():
            shutil.rmtree(self.local)


def run_synced_task(payload: dict[str, Any]) -> dict[str, Any]:
    """``pipeline.run_task`` on the mirror of ``payload['remote']``: pull, run, push."""
    from corpusforge.pipeline import run_task

    out = RemoteOutput(payload["remote"], payload["output"])
    stage = payload["stage"]
    if not (stage["kind"] == "curate" and stage["segment"] == 0):
        out.pull()  # the first curate stage reads only its sources: no listing of the store for it
    before = out.snapshot()
    result = run_task(payload)
    out.push(before, records={f"{STATE}{stage['name']}/{payload['task']:06d}.json"})
    return result


def local_copy(url: str, dest: str | os.PathLike[str], skip: tuple[str, ...] = ("_work/", "_state/")) -> Path:
    """Download the output at ``url`` (without its work files) into ``dest``, for validate/inspect."""
    out = RemoteOutput(url, dest)
    if not out.remote_files():
        raise CorpusforgeError(f"{url}: no such output (nothing stored under it)")
    out.pull(skip=skip)
    return out.local
