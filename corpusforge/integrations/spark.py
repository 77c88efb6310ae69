"""A recipe's per-document steps applied to a ``pyspark.sql.DataFrame`` of ``id, text, metadata``:
for teams whose data already lives in Spark and who want corpusforge's curation without leaving it.

Only steps that judge or change one document at a time run here (filters, normalisation, PII and
secret scrubbing, language ID, model scores). Corpus-wide steps (the dedup family) need every
document at once and the run's staging: for those, run the recipe with ``executor.kind: spark``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from corpusforge.document import Document
from corpusforge.errors import RecipeError
from corpusforge.observe.stats import TaskContext
from corpusforge.recipe import Recipe, load_recipe
from corpusforge.step import CorpusStep, run_step

DROPPED = "dropped"  # the column ``keep_dropped`` adds: "<step>: <reason>" or null


class _Recording(TaskContext):
    """A task context that also keeps the documents dropped, with the step and reason."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.dropped: list[tuple[Document, str]] = []

    def drop(self, step: object, doc: Document, reason: str, score: float | None = None) -> None:
        super().drop(step, doc, reason, score)
        self.dropped.append((doc, f"{getattr(step, 'name', type(step).__name__)}: {reason}"))


def apply_steps(df: Any, recipe: Recipe | dict[str, Any] | str, keep_dropped: bool = False) -> Any:
    """``df`` (columns ``id``, ``text`` and optionally ``metadata``: a JSON string, a map or a struct)
    through ``recipe``'s steps: the kept rows, text as the steps left it, metadata of the same type.
    With ``keep_dropped`` every row comes back and a ``dropped`` column says which step removed it
    and why (null for kept rows)."""
    from pyspark.sql import types as T

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    wide = [s.name for s in recipe.build_steps() if isinstance(s, CorpusStep)]
    if wide:
        raise RecipeError(f"apply_steps: {', '.join(wide)} compare documents across the corpus and cannot run on "
                          "a DataFrame's partitions; run the recipe with executor.kind: spark instead")
    missing = {"id", "text"} - set(df.columns)
    if missing:
        raise RecipeError(f"apply_steps: the DataFrame has no {', '.join(sorted(missing))} column "
                          f"(it has {', '.join(df.columns)})")
    meta_type = df.schema["metadata"].dataType if "metadata" in df.columns else None
    fields = [T.StructField("id", T.StringType(), False), T.StructField("text", T.StringType(), True)]
    if meta_type is not None:
        fields.append(T.StructField("metadata", meta_type, True))
    if keep_dropped:
        fields.append(T.StructField(DROPPED, T.StringType(), True))
    recipe_dict, seed = recipe.model_dump(mode="json"), recipe.seed
    columns = [c for c in ("id", "text", "metadata") if c in df.columns]

    def partition(index: int, rows: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
        steps = Recipe.model_validate(recipe_dict).build_steps()
        with tempfile.TemporaryDirectory(prefix="corpusforge-spark-") as work:
            ctx = _Recording("spark", index, Path(work), seed)
            docs: Iterator[Document] = (
                Document(r["text"] or "", str(r["id"]), "spark", n, _meta_in(r["metadata"]) if meta_type else {})
                for n, r in enumerate(rows))
            for step in steps:
                step.setup(ctx)
                docs = run_step(step, docs, ctx)
            for doc in docs:
                while keep_dropped and ctx.dropped:
                    yield _row(*ctx.dropped.pop(0), meta_type, keep_dropped)
                yield _row(doc, None, meta_type, keep_dropped)
            while keep_dropped and ctx.dropped:
                yield _row(*ctx.dropped.pop(0), meta_type, keep_dropped)

    rdd = df.select(*columns).rdd.map(lambda r: r.asDict(recursive=True)).mapPartitionsWithIndex(partition)
    return df.sparkSession.createDataFrame(rdd, T.StructType(fields))


def _meta_in(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        loaded = orjson.loads(value) if value else {}
        return loaded if isinstance(loaded, dict) else {"value": loaded}
    return dict(value)


def _row(doc: Document, dropped: str | None, meta_type: Any, keep_dropped: bool) -> tuple[Any, ...]:
    from pyspark.sql import types as T

    row: list[Any] = [doc.id, doc.text]
    if meta_type is not None:
        meta = doc.metadata
        if isinstance(meta_type, T.StringType):
            row.append(orjson.dumps(meta, default=str).decode())
        elif isinstance(meta_type, T.MapType):
            row.append({str(k): v if isinstance(v, str) or v is None else orjson.dumps(v, default=str).decode()
                        for k, v in meta.items()})
        else:  # a struct: its own fields; what a step added has no column to go to
            row.append(tuple(meta.get(f.name) for f in meta_type.fields))
    if keep_dropped:
        row.append(dropped)
    return tuple(row)
