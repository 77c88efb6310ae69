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

Non-file sources (SQL, ``urls``, ``rest_api``, HF datasets) have a ``refresh`` policy instead:
each part gets a content fingerprint from its source (row count and newest ``updated_column``,
fetched bytes, first page, dataset revision), kept in ``_state/fingerprints.jsonl`` with the time
of the check. Its digest becomes the part's ``digest``, so a changed source runs its task again
and an unchanged one is skipped; one line on stderr says what was re-read and why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import orjson
import xxhash

from corpusforge.layout import OutputLayout
from corpusforge.redact_urls import redact_secrets, redact_text, redact_url
from corpusforge.sources.base import Part, Source, TaskInput
from corpusforge.state import atomic_write_bytes

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
    path = OutputLayout(output).manifest
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


def fingerprint_digest(fingerprint: dict[str, Any]) -> str:
    """The part digest of a non-file source's fingerprint (what enters the task's identity)."""
    return "fp:" + hashlib.sha256(orjson.dumps(fingerprint, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _fp_key(source: str, part: Part) -> str:
    """A part's record id: a hash of the real uri and key (two URLs may differ only in a secret
    value, which the record's redacted ``uri`` no longer shows)."""
    return hashlib.sha256(f"{source}\0{part.path}\0{part.key}".encode()).hexdigest()[:32]


def load_fingerprints(output: Path) -> dict[str, dict[str, Any]]:
    """The last fingerprint of every part of a non-file source, by source, uri and key."""
    path = OutputLayout(output).fingerprints
    entries: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_bytes().splitlines():
            try:
                rec = orjson.loads(line)
                entries[rec["id"]] = rec
            except (orjson.JSONDecodeError, KeyError, TypeError):  # a damaged line costs one re-check
                continue
    return entries


def refresh_fingerprints(output: Path, tasks: list[TaskInput], sources: Mapping[str, Source],
                         say: Callable[[str], None] | None = None, now: float | None = None) -> list[TaskInput]:
    """Give the parts of sources with a ``refresh`` policy the digest of their fingerprint (a new
    one where the policy says a check is due, else the last one), record them, and say per
    source what is re-read and why. Other parts pass through."""
    output = Path(output)
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    now = time.time() if now is None else now
    prev = load_fingerprints(output)
    by_source: dict[str, list[Part]] = {}
    for t in tasks:
        if getattr(sources.get(t.source), "refresh", None) is not None:
            by_source.setdefault(t.source, []).extend(t.parts)
    if not by_source:
        return tasks
    records: dict[str, dict[str, Any]] = {}
    for name, parts in by_source.items():
        src = sources[name]
        policy = src.refresh
        assert policy is not None
        keys = [_fp_key(name, p) for p in parts]
        last = [prev.get(k, {}).get("checked") for k in keys]
        due_at = [i for i, c in enumerate(last) if policy.due(c, now)]
        due = [parts[i] for i in due_at]
        since = max((last[i] for i in due_at if last[i] is not None), default=None)
        found = src.fingerprints(due, OutputLayout(output).source_work(name), since) if due else []
        checked = time.time()  # after the check: what it stored before this moment is then as old as the check
        fresh = dict(zip((keys[i] for i in due_at), found, strict=True))
        changes, unchanged, kept = [], 0, 0
        seen_before = any(r.get("source") == name for r in prev.values())
        for key, p in zip(keys, parts, strict=True):
            old = prev.get(key)
            if key in fresh:
                records[key] = {"id": key, "source": name, "uri": redact_url(p.path), "key": redact_text(p.key),
                                "fingerprint": fresh[key], "checked": checked}
                if old is None:
                    if seen_before:  # a part added since the last run (the first run says nothing)
                        changes.append(src.describe_change({}, fresh[key]))
                    continue
                if old.get("fingerprint") == fresh[key]:
                    unchanged += 1
                else:
                    changes.append(src.describe_change(old.get("fingerprint") or {}, fresh[key]))
            else:
                records[key] = old or {"id": key, "source": name, "uri": redact_url(p.path),
                                       "key": redact_text(p.key), "fingerprint": {}, "checked": None}
                kept += old is not None
        if changes:
            reasons = list(dict.fromkeys(changes))
            shown = "; ".join(reasons[:3]) + (f"; {len(reasons) - 3} more" if len(reasons) > 3 else "")
            if len(parts) > 1:
                shown = f"{len(changes)} of {len(parts)} {src.part_noun}: {shown}"
            say(redact_text(f"source {name!r}: {shown}, re-reading"))
        elif unchanged:
            say(f"source {name!r}: unchanged since the last check")
        if kept and not changes and not unchanged:
            why = "refresh: never" if policy.mode == "never" else f"checked less than refresh_ttl ({policy.ttl:g} s) ago"
            say(f"source {name!r}: not checked for changes ({why}); --fresh or refresh: always re-reads it")
    digests = {k: fingerprint_digest(r["fingerprint"]) for k, r in records.items()}
    tasks = [TaskInput(t.source, tuple(dataclasses.replace(p, digest=d)
                                       if (d := digests.get(_fp_key(t.source, p))) is not None else p
                                       for p in t.parts))
             for t in tasks]
    keep = {k: r for k, r in prev.items() if r.get("source") not in by_source}  # sources not in this plan
    keep.update(records)
    lines = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for _, r in sorted(keep.items())]
    lay = OutputLayout(output)
    lay.state.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(lay.fingerprints, b"\n".join(lines) + b"\n")
    return tasks


def _previous_plan(output: Path) -> list[dict[str, Any]]:
    plan_path = OutputLayout(output).plan
    try:
        return orjson.loads(plan_path.read_bytes()) if plan_path.exists() else []
    except orjson.JSONDecodeError:
        return []


def reconcile_with_manifest(
    output: Path, tasks: list[TaskInput], sources: Mapping[str, Source], threads: int = 8
) -> list[TaskInput]:
    """Attach content hashes to the parts of sources that hash their inputs and fingerprints to
    those of sources with a refresh policy, reuse previous task indices for unchanged tasks, and
    write the new manifest."""
    output = Path(output)
    tasks = refresh_fingerprints(output, tasks, sources)
    prev = load_manifest(output)
    files: dict[str, tuple[str, Part]] = {}
    for t in tasks:
        if getattr(sources.get(t.source), "hash_inputs", False):
            for p in t.parts:
                files.setdefault(p.path, (t.source, p))
    if not files:
        return _keep_slots(_previous_plan(output), tasks)
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
    tasks = _keep_slots(_previous_plan(output), tasks)
    lines = []
    for uri in sorted(files):
        source, p = files[uri]
        rec = {"uri": redact_url(uri), "source": source, "key": redact_text(p.key), "size": p.size, "mtime": p.mtime, "etag": p.etag,
               "hash": digests[uri]}
        lines.append(orjson.dumps(rec))
    atomic_write_bytes(OutputLayout(output).manifest, b"\n".join(lines) + b"\n")
    return tasks
