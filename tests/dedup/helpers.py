from __future__ import annotations

from pathlib import Path

import orjson

from corpusforge.dedup.clusters import ClusterDedup
from corpusforge.document import Document
from corpusforge.observe.stats import TaskContext


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def run_step(step: ClusterDedup, tasks: list[list[Document]], stage_dir: Path) -> dict[int, dict[int, str]]:
    """Sign every task, decide every partition, finalize: the pipeline's calls, in this process."""
    step.bind(stage_dir)
    for t, docs in enumerate(tasks):
        out = list(step(iter(docs), TaskContext("curate", t, stage_dir)))
        assert [d.id for d in out] == [d.id for d in docs]
    for p in range(step.partitions()):
        step.decide(p, len(tasks))
    step.finalize(len(tasks))
    return {t: step.removed(t) for t in range(len(tasks))}


def doc(i: str, text: str, **meta) -> Document:
    return Document(text, id=i, source="mem", metadata=dict(meta))


def audit(stage_dir: Path) -> list[dict]:
    lines = (stage_dir / "result" / "clusters.jsonl").read_bytes().splitlines()
    return [orjson.loads(x) for x in lines]
