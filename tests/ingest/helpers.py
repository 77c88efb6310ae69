"""Run the files source over a folder, outside the pipeline, collecting documents and quarantine."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from corpusforge.observe.stats import TaskContext
from corpusforge.sources.files import FilesSource


def read_all(path: Path | str, tmp_path: Path, **options: Any) -> tuple[list, list[dict]]:
    src = FilesSource(name="t", path=str(path), **options)
    ctx = TaskContext("curate", 0, tmp_path / "ctx")
    docs = [d for task in src.plan(1 << 30) for d in src.read(task, ctx)]
    return docs, ctx.quarantined


def word_f1(pred: str, gold: str) -> float:
    p, g = Counter(re.findall(r"\w+", pred.lower())), Counter(re.findall(r"\w+", gold.lower()))
    overlap = sum((p & g).values())
    if not overlap:
        return 0.0
    prec, rec = overlap / sum(p.values()), overlap / sum(g.values())
    return 2 * prec * rec / (prec + rec)
