"""Atomic file writes and per-task completion records, the basis of crash-safe resume.

Every output is written under a temporary name in the same directory and renamed into place, so
a reader never sees half a file. A task is done when its completion record exists and carries the
key (a hash of its config and inputs) that the current run expects.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from corpusforge import layout
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import ERASURES, LOCK, MARKER, OUTPUT_ENTRIES, OutputLayout, is_temporary


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.temporary(final)
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
        self.layout, self.stage = OutputLayout(root), stage
        self.dir = self.layout.records(stage)

    def path(self, task: int) -> Path:
        return self.layout.record(self.stage, task)

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


# -- whose output is this, and who is writing it ------------------------------------------------

# MARKER, LOCK and OUTPUT_ENTRIES (what a run writes at the top of its output) live in layout.py.
_STATE_MARKERS = tuple(Path(p).name for p in (MARKER, layout.PLAN, LOCK))  # any of them in _state/: an output
INDEX = layout.INDEX  # ... or, its _state/ deleted, an index naming its recipe's hash


class OutputRefused(CorpusforgeError):
    """An output cannot be written or deleted safely: another process holds it, it holds another
    recipe's output, or it is not a corpusforge output. The command line exits 1 with the message."""


def _splits_named(read_text: Callable[[str], str | None]) -> set[str]:
    """The split folders an output's own recipe.yaml and shard_index.json name."""
    import yaml

    names: set[str] = set()
    with contextlib.suppress(Exception):
        index = orjson.loads(read_text(INDEX) or "{}")
        names |= set(index.get("splits") or {}) | set(index.get("split_ratios") or {})
    with contextlib.suppress(Exception):
        recipe = yaml.safe_load(read_text(layout.RECIPE) or "") or {}
        names |= set((recipe.get("sharding") or {}).get("splits") or {"train": 1, "val": 1, "test": 1})
    return {n for n in names if isinstance(n, str)}


def _recognised(state_names: set[str], read_text: Callable[[str], str | None]) -> bool:
    """A marker in ``_state/``, or (its ``_state/`` deleted) an index that names its recipe's hash."""
    if state_names & set(_STATE_MARKERS):
        return True
    try:
        return "recipe_sha256" in orjson.loads(read_text(INDEX) or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return False


# Files that mark an empty folder (a repository keeping it, a desktop's index): a run writes beside
# them and --fresh leaves them.
_PLACEHOLDERS = frozenset({".gitkeep", ".keep", ".DS_Store"})


def deletion_refusal(where: str, names: set[str], state_names: set[str],
                     read_text: Callable[[str], str | None]) -> str | None:
    """Why the folder ``where`` (top-level entries ``names``, ``_state/`` entries ``state_names``)
    must not be deleted, or None: only an empty folder, or a corpusforge output holding nothing but
    what corpusforge writes, may be. ``read_text(rel)`` reads one of its files (None if absent)."""
    names = {n for n in names if not is_temporary(n)} - _PLACEHOLDERS  # kept by remove_output
    state_names = state_names - {Path(LOCK).name}  # a lock alone is what taking it left, not an output
    if not state_names:
        names.discard(layout.STATE)
    if not names:
        return None
    if not _recognised(state_names, read_text):
        return (f"{where}: not a corpusforge output (no {MARKER}), refusing to delete it; "
                "delete it yourself or choose another output")
    unknown = sorted(names - OUTPUT_ENTRIES - _splits_named(read_text))
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        return (f"{where}: holds files corpusforge did not write ({shown}), refusing to delete it; "
                "move them out or choose another output")
    return None


def write_refusal(where: str, names: set[str], state_names: set[str],
                  read_text: Callable[[str], str | None]) -> str | None:
    """Why a run must not write into ``where`` (top-level entries ``names``, ``_state/`` entries
    ``state_names``), or None: a folder holding someone else's files is not an output, and a run
    would overwrite a README.md there and clean up names it uses (``shard_*``, ``lineage/``...)."""
    names = {n for n in names if not is_temporary(n)} - _PLACEHOLDERS
    if not state_names - {Path(LOCK).name}:
        names.discard(layout.STATE)
    if not names or _recognised(state_names - {Path(LOCK).name}, read_text):  # a lock alone makes no output
        return None
    return (f"{where}: not empty and not a corpusforge output (no {MARKER}), refusing to write into it; "
            "choose an empty or new folder")


def check_writable(output: Path) -> None:
    """Raise ``OutputRefused`` if a run must not write into the folder ``output`` (``write_refusal``)."""
    if not output.is_dir():
        return
    state = OutputLayout(output).state
    state_names = {p.name for p in state.iterdir()} if state.is_dir() else set()
    why = write_refusal(str(output), {p.name for p in output.iterdir()}, state_names, _read_text(output))
    if why:
        raise OutputRefused(why)


def _read_text(root: Path) -> Callable[[str], str | None]:
    def read(rel: str) -> str | None:
        try:
            return (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    return read


def check_deletable(output: Path) -> None:
    """Raise ``OutputRefused`` unless ``output`` is missing, empty or a corpusforge output with
    nothing of anyone else's in it (see ``deletion_refusal``)."""
    if not output.exists() and not output.is_symlink():
        return
    if not output.is_dir():
        raise OutputRefused(f"{output}: not a folder, refusing to delete it")
    names = {p.name for p in output.iterdir()}
    state = OutputLayout(output).state
    state_names = {p.name for p in state.iterdir()} if state.is_dir() else set()
    why = deletion_refusal(str(output), names, state_names, _read_text(output))
    if why:
        raise OutputRefused(why)


JUDGE_CACHE_DIR = layout.JUDGE_CACHE  # _work/llm_judge/: the LLM judge's answers, which --fresh keeps


def remove_output(output: Path, keep_lock: bool = False) -> None:
    """Delete the corpusforge output ``output`` (``--fresh``) after ``check_deletable``; with
    ``keep_lock`` the folder and its lock file stay, so the run holding the lock keeps it, and so
    does the LLM judge's answer cache (``_work/llm_judge/``: requests paid for are not sent again)."""
    check_deletable(output)
    if not output.is_dir():
        return
    if not keep_lock:
        shutil.rmtree(output)
        return
    for entry in output.iterdir():
        if entry.name in _PLACEHOLDERS:
            continue
        if entry.name == layout.STATE and entry.is_dir() and not entry.is_symlink():
            _remove_all_but(entry, Path(LOCK).name)
        elif entry.name == layout.WORK and (entry / JUDGE_CACHE_DIR).is_dir() and not entry.is_symlink():
            _remove_all_but(entry, JUDGE_CACHE_DIR)  # answers paid for, keyed by model, prompt and text
        else:
            _remove(entry)


def _remove_all_but(folder: Path, keep: str) -> None:
    """Remove every entry of ``folder`` except the one named ``keep``."""
    for sub in folder.iterdir():
        if sub.name != keep:
            _remove(sub)


def _remove(path: Path) -> None:
    """A file or a link is unlinked (never what a link points to); a folder is removed with its contents."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# Kept when another recipe takes an output over: task records and work files are keyed by the
# recipe (so never reused wrongly) and hold caches worth keeping; the input manifest; the tracking
# history; the erasure record (erased documents stay out of every later run).
_KEPT_ON_RECIPE_CHANGE = frozenset({layout.STATE, layout.WORK, layout.MANIFEST, *layout.TRACKERS})


def retire_published(output: Path) -> list[str]:
    """Delete what the recipe that wrote ``output`` published (shards of every split it had, index,
    stats, version, card, documents, lineage, embeddings, codebooks, quarantine and audit logs, the
    tokenizer), before another recipe runs into it; files corpusforge did not write are left alone.
    Returns the top-level names removed."""
    if not output.is_dir():
        return []
    ours = (OUTPUT_ENTRIES | _splits_named(_read_text(output))) - _KEPT_ON_RECIPE_CHANGE
    removed = []
    for entry in sorted(output.iterdir()):
        if entry.name not in ours:
            continue
        if entry.name == layout.AUDIT and entry.is_dir() and not entry.is_symlink():
            _remove_all_but(entry, Path(ERASURES).name)
        else:
            _remove(entry)
        removed.append(entry.name)
    return removed


_HELD: dict[str, list[Any]] = {}  # lock path -> [open file, depth]: a process may re-enter its own lock


class OutputLock:
    """An exclusive ``flock`` on ``<output>/_state/lock`` (or ``path``), held by the driver for a whole
    run: a second run, erase, card or embed of the same output fails at once, naming the holder.
    ``shared`` takes a shared lock instead (``run-task``: many tasks at once, but none during a run).
    The kernel drops the lock when the process ends, however it ends, so a crash leaves none behind.
    Where ``fcntl`` is missing (Windows) nothing is locked. With ``create=False`` (commands that
    change a finished output) a folder without ``_state/`` is left as it is and not locked."""

    def __init__(self, output: Path, command: str = "run", path: Path | None = None, create: bool = True,
                 shared: bool = False):
        self.output, self.command, self.create, self.shared = Path(output), command, create, shared
        self.path = Path(path) if path is not None else OutputLayout(self.output).lock

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        key = str(self.path)
        if key in _HELD:
            _HELD[key][1] += 1
            return
        if self.output.exists() and not self.output.is_dir():
            raise OutputRefused(f"{self.output}: exists and is not a folder")
        if not self.create and not self.path.parent.is_dir():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            import fcntl
        except ImportError:
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = _describe_holder(fh.read())
                fh.close()
                raise OutputRefused(f"{self.output}: in use by {holder}; wait for it to end or choose another "
                                    "output") from None
        fh.seek(0)
        fh.truncate()
        fh.write(orjson.dumps({"command": self.command, "pid": os.getpid(), "host": socket.gethostname(),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        fh.flush()
        _HELD[key] = [fh, 1]

    def release(self) -> None:
        held = _HELD.get(str(self.path))
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _HELD[str(self.path)]
            held[0].close()  # closing the file releases the flock


def _describe_holder(raw: bytes) -> str:
    try:
        h = orjson.loads(raw)
        return f"corpusforge {h['command']} (pid {h['pid']} on {h['host']}, started {h['started']})"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "another corpusforge process"
