"""The input manifest: what every input file was at the last plan, for incremental re-runs.

``<output>/manifest.jsonl`` holds one line per input file: ``uri``, ``source``, ``key``,
``size``, ``mtime``, ``etag`` and ``hash`` (xxh3-128 of the stored bytes). At each plan:

- a file whose size, mtime and etag equal its manifest line keeps its recorded hash (no read);
  any other file is hashed again (in parallel threads). Parts carry the hash as ``digest``, and
  a task's completion key then depends on content, not on mtime: a file that was touched or
  copied but not changed is not processed again.
- tasks whose inputs are unchanged keep the index they had in the previous plan
  (``_state/plan.json``), so their completion records still match; new and changed tasks fill
  the free indices. Only those are processed again in the per-input stage.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import orjson
import xxhash

from corpusforge.redact_urls import redact_secrets, redact_text, redact_url
from corpusforge.sources.base import Part, Source, TaskInput
from corpusforge.state import atomic_write_bytes

MANIFEST_NAME = "manifest.jsonl"
_CHUNK = 1 << 22


def content_hash(uri: str) -> str:
    """xxh3-128 of a file's stored (possibly compressed) bytes, read in 4 MB chunks; ``""`` for
    what is not a readable regular file (the read quarantines it; opening a FIFO would block)."""
    h = xxhash.xxh3_128()
    try:
        if "://" not in uri and not stat.S_ISREG(os.stat(uri).st_mode):
            return ""
        with fsspec.open(uri, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()


def load_manifest(output: Path) -> dict[str, dict[str, Any]]:
    path = Path(output) / MANIFEST_NAME
    if not path.exists():
        return {}
    entries = {}
    for line in path.read_bytes().splitlines():
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:  # a damaged line only costs re-hashing that file
            continue
        entries[rec["uri"]] = rec
    return entries


def _unchanged(prev: dict[str, Any] | None, part: Part) -> bool:
    return (prev is not None and prev.get("size") == part.size and prev.get("mtime") == part.mtime
            and prev.get("etag", "") == part.etag and bool(prev.get("hash")))


def _keep_slots(previous: list[dict[str, Any]], tasks: list[TaskInput]) -> list[TaskInput]:
    """Reorder ``tasks`` so each unchanged task keeps its previous index; others fill the gaps."""
    if not previous:
        return tasks
    # plan.json is stored redacted (a URL input's query may hold an api_key): compare redacted forms.
    key = lambda t: orjson.dumps(redact_secrets(t.identity()), option=orjson.OPT_SORT_KEYS)  # noqa: E731
    wanted: dict[bytes, list[int]] = {}
    for i, t in enumerate(tasks):
        wanted.setdefault(key(t), []).append(i)
    slots: list[TaskInput | None] = []
    used: set[int] = set()
    for d in previous:
        try:
            ids = wanted.get(key(TaskInput.from_dict(d)))
        except (KeyError, TypeError):
            ids = None
        if ids:
            i = ids.pop(0)
            used.add(i)
            slots.append(tasks[i])
        else:
            slots.append(None)
    rest = [t for i, t in enumerate(tasks) if i not in used]
    for j, slot in enumerate(slots):
        if slot is None and rest:
            slots[j] = rest.pop(0)
    slots.extend(rest)
    # More tasks vanished than appeared: move the last tasks into the holes (only they rerun).
    while None in slots:
        last = slots.pop()
        if last is not None:
            slots[slots.index(None)] = last
    return [s for s in slots if s is not None]


def reconcile_with_manifest(
    output: Path, tasks: list[TaskInput], sources: Mapping[str, Source], threads: int = 8
) -> list[TaskInput]:
    """Attach content hashes to the parts of sources that hash their inputs, reuse previous task
    indices for unchanged tasks, and write the new manifest. Other sources pass through."""
    output = Path(output)
    prev = load_manifest(output)
    files: dict[str, tuple[str, Part]] = {}
    for t in tasks:
        if getattr(sources.get(t.source), "hash_inputs", False):
            for p in t.parts:
                files.setdefault(p.path, (t.source, p))
    if not files:
        return tasks
    # Entries are stored under the redacted uri (the manifest is a copy in the output, like recipe.yaml).
    digests = {uri: prev[redact_url(uri)]["hash"] for uri, (_, p) in files.items()
               if _unchanged(prev.get(redact_url(uri)), p)}
    todo = sorted(uri for uri in files if uri not in digests)
    if todo:
        with ThreadPoolExecutor(max(1, min(threads, len(todo)))) as pool:
            digests.update(zip(todo, pool.map(content_hash, todo), strict=True))
    tasks = [
        TaskInput(t.source, tuple(dataclasses.replace(p, digest=digests[p.path]) if p.path in digests else p
                                  for p in t.parts))
        for t in tasks
    ]
    plan_path = output / "_state" / "plan.json"
    previous = orjson.loads(plan_path.read_bytes()) if plan_path.exists() else []
    tasks = _keep_slots(previous, tasks)
    lines = []
    for uri in sorted(files):
        source, p = files[uri]
        rec = {"uri": redact_url(uri), "source": source, "key": redact_text(p.key), "size": p.size, "mtime": p.mtime, "etag": p.etag,
               "hash": digests[uri]}
        lines.append(orjson.dumps(rec))
    atomic_write_bytes(output / MANIFEST_NAME, b"\n".join(lines) + b"\n")
    return tasks
