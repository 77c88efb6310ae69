"""Atomic file writes and per-task completion records, the basis of crash-safe resume.

Every output is written under a temporary name in the same directory and renamed into place, so
a reader never sees half a file. A task is done when its completion record exists and carries the
key (a hash of its config and inputs) that the current run expects.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    return orjson.loads(Path(path).read_bytes())


class CompletionRecords:
    """``<output>/_state/<stage>/<task>.json``: one record per finished task, with its key and stats."""

    def __init__(self, root: Path, stage: str):
        self.dir = root / "_state" / stage

    def path(self, task: int) -> Path:
        return self.dir / f"{task:06d}.json"

    def done(self, task: int, key: str) -> dict[str, Any] | None:
        """The record of ``task`` if it finished with this ``key``, else None."""
        p = self.path(task)
        if not p.exists():
            return None
        try:
            rec = read_json(p)
        except orjson.JSONDecodeError:
            return None
        if rec.get("key") != key:
            return None
        rec.pop("key")
        return rec

    def write(self, task: int, key: str, result: dict[str, Any]) -> None:
        atomic_write_json(self.path(task), {"key": key, **result})


def atomic_save_npy(path: str | os.PathLike[str], arr: Any) -> None:
    """``numpy.save`` to ``path`` atomically (signatures, removal sets, cluster results)."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 4 MB blocks (the checksum every index and record stores)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
