"""The stages of a corpus-wide step (``CorpusStep``): ``decide`` per partition, then, for a step that
overrides ``finalize``, one ``<name>_finalize`` task that combines what the partitions found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from corpusforge.observe.stats import TaskContext
from corpusforge.stages.base import Stage, StageBase, numeric_totals, register_stage

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline


@dataclass
class StepResult:
    """What a corpus-wide step reports of a partition or of its finalize: its own figures (rows
    removed, clusters, ...), recorded as the step returns them."""

    figures: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        return dict(self.figures)


class _CorpusStepStage(StageBase):
    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The step's numeric figures summed over its tasks (stats.json ``stages[].result``)."""
        return {"result": numeric_totals(records)}


@register_stage("decide")
class DecideStage(_CorpusStepStage):
    """One partition of corpus-wide step ``stage.segment`` decides which rows to drop."""

    def plan(self, pipe: Pipeline, segment: int) -> int:
        return pipe.boundaries[segment].partitions()

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> StepResult:
        return StepResult(pipe.boundaries[stage.segment].decide(task, len(pipe.plan)))


@register_stage("finalize")
class FinalizeStage(_CorpusStepStage):
    """The one task that combines the partitions' evidence of corpus-wide step ``stage.segment``."""

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> StepResult:
        return StepResult(pipe.boundaries[stage.segment].finalize(len(pipe.plan)))
