"""The ``mixture`` stage (only with ``sharding.max_records``): one task picks each capped source's
sample, the documents with the smallest seeded hash of their id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from corpusforge.observe.stats import TaskContext
from corpusforge.splits import sample_hash
from corpusforge.stages.base import Stage, StageBase, first_record, register_stage
from corpusforge.state import atomic_write_json

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline


@dataclass
class MixtureResult:
    """Per capped source, the largest sample hash kept (-1: none) and how many documents it has."""

    max_hash: dict[str, int]
    available: dict[str, int]

    def to_record(self) -> dict[str, Any]:
        return {"max_hash": self.max_hash, "available": self.available}


@register_stage("mixture")
class MixtureStage(StageBase):
    """Per capped source, the largest sample hash that is kept: its ``max_records`` documents
    with the smallest seeded hash of their id, so the sample is exact and independent of tasks
    and workers. Holds at most ``max_records`` hashes per source plus one task's."""

    def run_task(self, pipe: Pipeline, stage: Stage, task: int, ctx: TaskContext) -> MixtureResult:
        caps = pipe.recipe.sharding.max_records
        seed = pipe.recipe.seed
        best: dict[str, np.ndarray] = {}
        for t in range(len(pipe.plan)):
            docs, _ = pipe.final_documents(t, ctx)
            found: dict[str, list[int]] = {}
            for doc in docs:
                src = doc.metadata.get("source_name", "")
                if src in caps:
                    found.setdefault(src, []).append(sample_hash(doc.id, seed))
            for src, hashes in found.items():
                both = np.concatenate([best.get(src, np.empty(0, np.uint64)), np.array(hashes, dtype=np.uint64)])
                k = caps[src]
                best[src] = np.partition(both, k - 1)[:k] if 0 < k < len(both) else (both if k else both[:0])
        result = MixtureResult({src: (int(best[src].max()) if src in best and len(best[src]) else -1) for src in caps},
                               {src: int(len(best.get(src, ()))) for src in caps})
        atomic_write_json(pipe.mixture_path(), result.to_record())
        return result

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return first_record(records)
