"""The stage protocol: what a kind of stage plans, runs per task, finishes in the driver and reports.

A ``Stage`` is one line of a run's plan (its name, kind, task count and segment); its kind is a
registered ``StageKind`` object that does the work. Executors call ``pipeline.run_task``, which looks
the kind up here and calls ``run_task``; the driver (``runner.StageRun``) calls ``run_driver`` for the
stages that run in it (tokenizer, index) and ``finalize`` once every task of a stage finished.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from corpusforge.errors import CorpusforgeError
from corpusforge.observe.stats import TIMING, StepStats, TaskContext, merge_step_stats
from corpusforge.registry import Registry
from corpusforge.state import CompletionRecords
from corpusforge.tokenize.encoder import load_encoder

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from corpusforge.pipeline import Pipeline
    from corpusforge.remote import RemoteOutput


@dataclass(frozen=True)
class Stage:
    """One stage of a run: ``kind`` names its ``StageKind``; ``segment`` is, for curate, which
    segment of steps it runs and, for decide and finalize, which corpus-wide step."""

    name: str
    kind: str
    n_tasks: int
    segment: int = 0


class TaskResult(Protocol):
    """What a task returns: ``to_record`` is its completion record (``_state/<stage>/<task>.json``)."""

    def to_record(self) -> dict[str, Any]: ...


class DriverRun(Protocol):
    """What a driver-side stage sees of the run (``runner.StageRun``)."""

    pipe: Pipeline
    remote: RemoteOutput | None
    console: Console
    bar: Progress
    results: dict[str, list[dict[str, Any]]]

    @property
    def where(self) -> str: ...

    def stats(self) -> dict[str, Any]: ...


class StageKind(Protocol):
    """A kind of stage. ``in_driver``: runs in the driver (``run_driver``), not as tasks;
    ``writes_in_driver``: the driver writes its files (an fsspec output pulls before, pushes after);
    ``per_input``: one task per planned input, whose size is known before it runs."""

    name: str
    in_driver: bool
    writes_in_driver: bool
    per_input: bool

    def plan(self, pipe: Pipeline, segment: int) -> int: ...

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> TaskResult: ...

    def run_driver(self, run: DriverRun, stage: Stage, records: CompletionRecords) -> dict[str, Any]: ...

    def finalize(self, run: DriverRun, stage: Stage) -> None: ...

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]: ...


STAGE_KINDS = Registry("stage kind")


class StageBase:
    """Defaults for a stage kind: one task per stage, run by workers, nothing to finish or report."""

    name = ""
    in_driver = False
    writes_in_driver = False
    per_input = False

    def plan(self, pipe: Pipeline, segment: int) -> int:
        return 1

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> TaskResult:
        raise CorpusforgeError(f"stage {stage.name!r} ({self.name}) runs in the driver, not as tasks")

    def run_driver(self, run: DriverRun, stage: Stage, records: CompletionRecords) -> dict[str, Any]:
        raise CorpusforgeError(f"stage {stage.name!r} ({self.name}) runs as tasks, not in the driver")

    def finalize(self, run: DriverRun, stage: Stage) -> None:
        return None

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {}


class PerInputStage(StageBase):
    """A stage with one task per planned input."""

    per_input = True

    def plan(self, pipe: Pipeline, segment: int) -> int:
        return len(pipe.plan)

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The per-step counts of every task, summed step by step (stats.json ``stages[].steps``)."""
        return {"steps": merge_step_stats([r["steps"] for r in records])}


def numeric_totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers of a stage's records summed over its tasks, and their ``cluster_sizes`` merged."""
    numeric = [k for k, v in (records[0] if records else {}).items()
               if isinstance(v, (int, float)) and k != "peak_rss_mb"]
    out: dict[str, Any] = {k: sum(r[k] for r in records) for k in numeric}
    if any("cluster_sizes" in r for r in records):
        sizes: Counter[str] = Counter()
        for r in records:
            sizes.update(r.get("cluster_sizes", {}))
        out["cluster_sizes"] = dict(sorted(sizes.items()))
    return out


def first_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A one-task stage's record without its timing and memory figures."""
    return {"result": {k: v for k, v in records[0].items() if k not in (TIMING, "peak_rss_mb")}} if records else {}


def register_stage(name: str) -> Any:
    """Register a stage kind class under ``name`` (the ``kind`` of its ``Stage`` lines)."""
    return STAGE_KINDS.register(name)


def finish_stats(stats: list[StepStats]) -> list[dict[str, Any]]:
    """Per-step dicts with own seconds (cumulative minus upstream) and docs_in from upstream."""
    out = []
    prev_cum, prev = 0.0, None
    for s in stats:
        s.seconds = max(0.0, s.seconds_cum - prev_cum)
        prev_cum = s.seconds_cum
        if prev is not None:
            s.docs_in, s.chars_in = prev.docs_out, prev.chars_out
        prev = s
        out.append(s.to_dict())
    return out


@lru_cache(maxsize=4)
def cached_encoder(path: str) -> Any:
    """The run's tokenizer, loaded once per process (workers are reused across tasks)."""
    return load_encoder(path)
