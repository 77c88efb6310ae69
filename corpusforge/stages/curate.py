"""The ``curate`` stages: per input task, read the source (or the rows a corpus-wide step kept) and
run one segment of steps; the documents are staged as Parquet for the next stage."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corpusforge.errors import UnusableInput
from corpusforge.observe.histogram import LengthHistogram
from corpusforge.observe.stats import TaskContext
from corpusforge.stages.base import DriverRun, PerInputStage, Stage, finish_stats, register_stage
from corpusforge.staging import DocumentWriter
from corpusforge.state import atomic_write_json

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline


@dataclass
class CurateResult:
    """A curate task's record: per-step counts, quarantine entries by reason and, for the first
    curation, the histogram of the lengths read."""

    steps: list[dict[str, Any]]
    quarantined: int
    quarantine_reasons: dict[str, int]
    lengths_read: list[int] | None = field(default=None)

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"steps": self.steps, "quarantined": self.quarantined,
                               "quarantine_reasons": self.quarantine_reasons}
        if self.lengths_read is not None:
            rec["lengths_read"] = self.lengths_read
        return rec


@register_stage("curate")
class CurateStage(PerInputStage):
    """Read and curate one task's documents (segment 0), or drop the decided rows of the staged
    output before a corpus-wide step and run the segment after it (``curate_<k>``)."""

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> CurateResult:
        seg = stage.segment
        lengths = LengthHistogram()
        if seg == 0:
            ti = pipe.plan[task]
            read = lengths.counting(pipe.without_erased(pipe.sources[ti.source].documents(ti, ctx)))
            docs, stats = pipe.through(pipe.segments[0], read, ctx, "read")
        else:
            boundary = pipe.boundaries[seg - 1]
            docs, stats = pipe.through(pipe.segments[seg], pipe.staged_after(seg - 1, task, ctx), ctx, "",
                                       ctx.stats_for(boundary))
        writer = DocumentWriter(pipe.staged_path(seg, task))
        try:
            for doc in docs:
                writer.write(doc)
        except BaseException:
            writer.abort()
            raise
        writer.close()
        lost, reasons = quarantine_summary(ctx)
        if seg == 0:
            stats[0].counts.update(ctx.stats_for(pipe.sources[ti.source]).counts)  # what the source skipped
            stats[0].docs_in = stats[0].docs_out + lost
            return CurateResult(finish_stats(stats), lost, reasons, lengths.counts)
        return CurateResult(finish_stats(stats), lost, reasons)

    def finalize(self, run: DriverRun, stage: Stage) -> None:
        """After the first curation, fail an input that was mostly quarantined (before a tokenizer
        is trained on what may be nothing)."""
        if stage.segment == 0:
            check_quarantine(run)


def quarantine_summary(ctx: TaskContext) -> tuple[int, dict[str, int]]:
    """Quarantine entries by reason; the count is of those that cost a document (not a refused
    media reference of a document that was kept)."""
    reasons = Counter(_reason_kind(q["reason"]) for q in ctx.quarantined)
    lost = sum(not q.get("document_kept") for q in ctx.quarantined)
    return lost, dict(sorted(reasons.items()))


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0].split(" (")[0].split(" at byte")[0]


def check_quarantine(run: DriverRun) -> None:
    """Raise ``UnusableInput`` when the sources gave no document or more than the recipe's
    ``max_quarantine_fraction`` of the records read was quarantined, after writing stats.json so
    the user can see why. Entries that cost no document (a refused media reference) do not count."""
    pipe, remote = run.pipe, run.remote
    curate = run.results["curate"]
    read = sum(r["steps"][0]["docs_out"] for r in curate if r.get("steps"))
    lost = sum(r.get("quarantined", 0) for r in curate)
    limit = pipe.recipe.max_quarantine_fraction
    if read and lost <= limit * (read + lost):
        return
    reasons: Counter[str] = Counter()
    for r in curate:
        reasons.update(r.get("quarantine_reasons", {}))
    top = ", ".join(f"{why}: {n:,}" for why, n in reasons.most_common(3))
    before = remote.snapshot() if remote else {}
    atomic_write_json(pipe.layout.stats, run.stats())
    if remote:
        remote.push(before)
    see = f"; see {run.where.rstrip('/')}/quarantine/"
    if not read:
        what = f"{lost:,} records quarantined ({top}){see}" if lost else "the sources yielded no record"
        raise UnusableInput(f"no documents: {what}")
    raise UnusableInput(f"too many records quarantined: {lost:,} of {read + lost:,} ({lost / (read + lost):.0%}, "
                        f"max_quarantine_fraction is {limit:g}; {top}){see}")
