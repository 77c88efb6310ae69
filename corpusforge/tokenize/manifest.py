"""Tokenizer training text from a multi-corpus manifest instead of the recipe's curated text.

A manifest is YAML: ``sources:`` a list of file sources (the options of a recipe source, paths
relative to the manifest) each with an optional ``max_samples``, the number of documents taken
from it, in reading order::

    sources:
      - {path: prose/, text_unit: paragraph, max_samples: 50000}
      - {path: code/code.jsonl, max_samples: 10000}
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from corpusforge.config import build
from corpusforge.errors import RecipeError
from corpusforge.observe.stats import TaskContext
from corpusforge.registry import SOURCES


def read_manifest(path: str | Path) -> list[tuple[Any, int | None]]:
    """The manifest's sources, built and validated, with their sample limits."""
    p = Path(path).expanduser()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"tokenizer.manifest: {str(path)!r} does not exist") from None
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list) or not data["sources"]:
        raise RecipeError(f"tokenizer.manifest {str(p)!r}: expected a mapping with a non-empty 'sources' list")
    out = []
    for i, spec in enumerate(data["sources"]):
        spec = {"type": "files", "name": f"manifest{i}", **spec}
        limit = spec.pop("max_samples", None)
        if isinstance(spec.get("path"), str) and not os.path.isabs(os.path.expanduser(spec["path"])):
            spec["path"] = str(p.resolve().parent / spec["path"])
        out.append((build(SOURCES, spec, f"tokenizer.manifest sources[{i}]"), limit))
    return out


def manifest_texts(path: str | Path, output: Path, budget: int | None = None) -> Iterator[str]:
    """Document texts of every manifest source, each cut at its ``max_samples``, all at ``budget`` chars."""
    return source_texts(read_manifest(path), output, budget)


def source_texts(sources: list[tuple[Any, int | None]], output: Path, budget: int | None = None) -> Iterator[str]:
    """Document texts of built sources in order, each cut at its sample limit, all at ``budget`` chars."""
    total = 0
    for i, (source, limit) in enumerate(sources):
        taken = 0
        for task in source.plan(64_000_000):
            if limit is not None and taken >= limit:
                break
            for doc in source.read(task, TaskContext("tokenizer_manifest", i, output)):
                if budget is not None and total >= budget:
                    return
                yield doc.text
                taken += 1
                total += len(doc.text)
                if limit is not None and taken >= limit:
                    break
