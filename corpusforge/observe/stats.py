"""Per-step counters and the context a task hands to its steps.

Counters are plain dicts of numbers so a task can return them across process boundaries, and the
stage sums them in task order (which keeps ``stats.json`` identical whatever the worker count).
"""

from __future__ import annotations

import random
import resource
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import zstandard

from corpusforge.document import Document
from corpusforge.layout import OutputLayout
from corpusforge.redact_urls import redact_text
from corpusforge.state import atomic_path


@dataclass
class StepStats:
    """What one step did inside one task."""

    name: str
    docs_in: int = 0
    docs_out: int = 0
    chars_in: int = 0
    chars_out: int = 0
    modified: int = 0
    seconds_cum: float = 0.0
    seconds: float = 0.0
    drops: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)  # step-defined counters (e.g. PII per category)

    def to_dict(self) -> dict[str, Any]:
        extra = {"counts": dict(sorted(self.counts.items()))} if self.counts else {}
        return {
            "name": self.name,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
            "modified": self.modified,
            "seconds": round(self.seconds, 6),
            "drops": dict(sorted(self.drops.items())),
            **extra,
        }


def merge_step_stats(per_task: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sum the step lists of several tasks, step by step, in task order."""
    merged: list[dict[str, Any]] = []
    for steps in per_task:
        for i, s in enumerate(steps):
            if i == len(merged):
                merged.append({**s, "drops": dict(s["drops"]), "counts": dict(s.get("counts", {}))})
                continue
            m = merged[i]
            for k in ("docs_in", "docs_out", "chars_in", "chars_out", "modified", "seconds"):
                m[k] += s[k]
            for reason, n in s["drops"].items():
                m["drops"][reason] = m["drops"].get(reason, 0) + n
            for name, n in s.get("counts", {}).items():
                m["counts"][name] = m["counts"].get(name, 0) + n
    for m in merged:
        if not m["counts"]:
            del m["counts"]
        m["seconds"] = round(m["seconds"], 6)
        m["drops"] = dict(sorted(m["drops"].items()))
    return merged


MODIFIED_BY = "modified_by"  # document metadata key: the steps that changed the text, in order


class TaskContext:
    """What a step may know and do inside one task: count drops, audit, quarantine, draw seeds."""

    def __init__(
        self,
        stage: str,
        task: int,
        output: Path,
        seed: int = 0,
        audit: bool = False,
    ):
        self.stage, self.task, self.output, self.seed = stage, task, output, seed
        self.layout = OutputLayout(output)
        self.workdir = self.layout.work
        self.audit_enabled = audit
        self.step_stats: dict[int, StepStats] = {}
        self.quarantined: list[dict[str, Any]] = []
        self._audit: list[bytes] = []

    def stats_for(self, step: object) -> StepStats:
        key = id(step)
        if key not in self.step_stats:
            self.step_stats[key] = StepStats(getattr(step, "name", type(step).__name__))
        return self.step_stats[key]

    def drop(self, step: object, doc: Document, reason: str, score: float | None = None) -> None:
        """Record that ``step`` removed ``doc`` and why."""
        self.stats_for(step).drops[reason] += 1
        if self.audit_enabled:
            self._record(step, doc, "dropped", reason, score)

    def modified(self, step: object, doc: Document, reason: str = "modified", score: float | None = None) -> None:
        """Count that ``step`` changed ``doc`` and note the step on the document for its lineage."""
        self.stats_for(step).modified += 1
        name = getattr(step, "name", type(step).__name__)
        steps = doc.metadata.setdefault(MODIFIED_BY, [])
        if name not in steps:
            steps.append(name)
        if self.audit_enabled:
            self._record(step, doc, "modified", reason, score)

    def count(self, step: object, name: str, n: int = 1) -> None:
        """Add ``n`` to a step-defined counter (reported under the step's ``counts`` in stats.json)."""
        self.stats_for(step).counts[name] += n

    def _record(self, step: object, doc: Document, action: str, reason: str, score: float | None) -> None:
        rec = {
            "doc_id": doc.id,
            "source": doc.source,
            "offset": doc.offset,
            "step": getattr(step, "name", type(step).__name__),
            "action": action,
            "reason": reason,
        }
        if score is not None:
            rec["score"] = score
        self._audit.append(orjson.dumps(rec))

    def quarantine(self, location: str, reason: str, raw: bytes | str | None = None, kept: bool = False) -> None:
        """Set aside an unreadable record or file, with where it was and why; ``kept``: only a part
        of it was (a refused media reference), the document itself goes on."""
        # A URL input's query may hold a credential (?api_key=...): the quarantine is a copy, redacted.
        rec: dict[str, Any] = {"location": redact_text(location), "reason": redact_text(reason)}
        if kept:
            rec["document_kept"] = True
        if raw is not None:
            if isinstance(raw, bytes):
                raw = raw[:2000].decode("utf-8", "backslashreplace")
            rec["raw"] = raw[:2000]
        self.quarantined.append(rec)

    def rng(self, salt: str) -> random.Random:
        """A random generator seeded by the recipe seed, the task and ``salt`` (never global state)."""
        return random.Random(f"{self.seed}:{self.stage}:{self.task}:{salt}")

    def flush(self) -> None:
        """Write this task's quarantine and audit records (atomically, one file each)."""
        if self.quarantined:
            path = self.layout.quarantine_file(self.stage, self.task)
            with atomic_path(path) as tmp:
                tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in self.quarantined))
        if self._audit:
            path = self.layout.audit_file(self.stage, self.task)
            with atomic_path(path) as tmp:
                tmp.write_bytes(zstandard.ZstdCompressor(level=3).compress(b"\n".join(self._audit) + b"\n"))


TIMING = "timing"  # completion record key: [start, end] of the task, epoch seconds


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of ``intervals`` (start, end): tasks that ran side by side
    count once, and the gaps between a killed run and its resumption not at all."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def earlier_seconds(records: list[dict[str, Any]], since: float) -> float:
    """Wall seconds of the tasks in ``records`` that finished before ``since`` (this invocation's
    start, epoch seconds): the time earlier invocations of a resumed run spent on them."""
    return union_seconds([tuple(r[TIMING]) for r in records if TIMING in r and r[TIMING][1] < since])


def task_seconds(records: list[dict[str, Any]]) -> float:
    """The summed durations of every task in ``records`` that carries its timing, all invocations."""
    return sum(r[TIMING][1] - r[TIMING][0] for r in records if TIMING in r)


def reset_peak_rss() -> None:
    """Start a new peak-memory window for this process: free heap pages go back to the system
    (glibc ``malloc_trim``: what an earlier task or stage freed), then, on Linux, writing 5 to
    clear_refs resets the high-water mark (VmHWM) to the current resident size.
    Every task calls it first, so a reused worker reports each task's own peak, not its lifetime's."""
    _trim_heap()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux, or /proc read-only: the peak is then the process's so far
        pass


def peak_rss_mb() -> float:
    """This process's peak resident memory since the last ``reset_peak_rss``, in MB.

    On Linux this is VmHWM from /proc/self/status, not ``ru_maxrss``: the kernel carries a forked
    child's pre-exec size into ``ru_maxrss`` (a run started by a 2.4 GB test or notebook process
    reported 2.4 GB for every driver stage), and ``clear_refs`` does not reset it."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _trim_heap() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
