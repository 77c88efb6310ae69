"""Stage kinds: one module per kind (curate, decide and finalize, embeddings, tokenizer, mixture,
shards, documents, index), each registering a ``StageKind`` class; ``stage_kind`` finds one."""

from __future__ import annotations

from functools import cache

from corpusforge.stages import curate, decide, documents, embeddings, index, mixture, shards, tokenizer
from corpusforge.stages.base import STAGE_KINDS, Stage, StageKind, TaskResult

__all__ = ["STAGE_KINDS", "Stage", "StageKind", "TaskResult", "stage_kind", "curate", "decide", "documents",
           "embeddings", "index", "mixture", "shards", "tokenizer"]


@cache
def stage_kind(name: str) -> StageKind:
    """The stage kind registered as ``name``; a kind nobody registered is a one-line ``RecipeError``."""
    return STAGE_KINDS.get(name, "stage")()
