"""The Python API: a recipe built in code, sources added one by one, a run that returns its stats.

It is shaped like the pipelines datatrove and NeMo Curator users know, and it is only the recipe
under another name: ``Pipeline(recipe).add_source(...).run(output=...)`` validates one
``Recipe`` and hands it to ``corpusforge.runner.run``, the engine the command line drives, so
the same recipe gives the same bytes either way. See docs/api.md.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from corpusforge.errors import RecipeError
from corpusforge.recipe import Recipe, load_recipe
from corpusforge.sources import SourceSpec, create_source


class RunStats:
    """What a run did: ``stats.json`` as a dict (``to_dict()``, ``stats["key"]``) and its main
    numbers as attributes; ``summary()`` says it in a few lines."""

    def __init__(self, stats: dict[str, Any], output: str | os.PathLike[str], curate_only: bool):
        self._stats = stats
        self.output = str(output)
        self.curate_only = curate_only
        docs = stats["documents"]
        self.documents_read: int = docs["read"]
        self.documents_quarantined: int = docs["quarantined"]
        self.documents_kept: int = docs["kept"]
        self.tokens: int = stats.get("tokens", 0)
        self.shards: int = stats.get("shards", {}).get("shards", 0)
        self.document_parts: int = stats.get("documents_output", {}).get("parts", 0)
        self.seconds: float = stats.get("seconds", 0.0)
        self.input_bytes: int = stats.get("input", {}).get("bytes", 0)

    def to_dict(self) -> dict[str, Any]:
        """The whole ``stats.json`` (a copy)."""
        return copy.deepcopy(self._stats)

    def __getitem__(self, key: str) -> Any:
        return self._stats[key]

    def drops(self) -> dict[str, int]:
        """Documents dropped per ``step: reason``, largest first (quarantine included)."""
        from corpusforge.observe.summary import drop_reasons

        return dict(drop_reasons(self._stats))

    def summary(self) -> str:
        """A few lines for people: documents read, dropped and kept, what was written, where."""
        kept_share = self.documents_kept / self.documents_read if self.documents_read else 0.0
        lines = [f"{self._stats.get('recipe', 'corpusforge')}: {self.documents_read:,} documents read, "
                 f"{self.documents_quarantined:,} quarantined, {self.documents_kept:,} kept ({kept_share:.1%})"]
        for why, n in list(self.drops().items())[:5]:
            lines.append(f"  dropped {n:,}: {why}")
        if self.curate_only:
            parts = f"{self.document_parts:,} part{'' if self.document_parts == 1 else 's'}"
            lines.append(f"documents: {self.documents_kept:,} in {parts} (curate-only, no shards)")
        else:
            lines.append(f"tokens: {self.tokens:,} in {self.shards:,} shards")
        lines.append(f"{self.seconds:.1f} s, {self.input_bytes / 1e6:.1f} MB in; output: {self.output}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"RunStats(documents_read={self.documents_read}, documents_kept={self.documents_kept}, "
                f"tokens={self.tokens}, shards={self.shards}, output={self.output!r})")


class Pipeline:
    """A recipe and the sources added to it; ``run`` validates the whole recipe and runs it.

    ``recipe``: a ``Recipe`` (``Recipe.from_preset("production")``), a recipe dict or a YAML path;
    None starts from the defaults. Its own sources come first, then those added."""

    def __init__(self, recipe: Recipe | dict[str, Any] | str | os.PathLike[str] | None = None):
        if recipe is None:
            recipe = Recipe.from_preset()
        elif not isinstance(recipe, Recipe):
            recipe = load_recipe(recipe, draft=True)
        self._data = recipe.model_dump(mode="json", exclude={"media"} if recipe.media is None else None)

    def add_source(self, source: SourceSpec | dict[str, Any] | str, **options: Any) -> Pipeline:
        """Add a source: a ``create_source`` result, a recipe source dict, or a catalog name or
        source type with its options (``add_source("files", path="data/")``). Returns the pipeline."""
        if isinstance(source, str):
            source = create_source(source, **options)
        elif isinstance(source, dict):
            source = SourceSpec({**source, **options})
        elif options:
            source = SourceSpec({**source.to_dict(), **options})
        spec = source.to_dict()
        if "name" not in spec:
            spec["name"] = f"source{len(self._data['sources'])}"
        self._data["sources"].append(spec)
        return self

    def add_step(self, step: dict[str, Any] | str, **options: Any) -> Pipeline:
        """Append a step (``add_step("language_id", languages=["en"])`` or its dict) after the
        recipe's steps; start from ``Recipe.from_preset(steps=[])`` for none of the defaults."""
        spec = {"type": step, **options} if isinstance(step, str) else {**step, **options}
        self._data["steps"].append(spec)
        return self

    @property
    def recipe(self) -> Recipe:
        """The whole recipe, validated (``RecipeError`` names a bad field, or a missing source)."""
        if not self._data["sources"]:
            raise RecipeError("sources: none yet; add one with Pipeline.add_source(...) before running")
        return load_recipe(self._data)

    def run(self, output: str | os.PathLike[str] | None = None, workers: int | None = None, fresh: bool = False,
            progress: bool = False, executor: str | None = None, address: str | None = None) -> RunStats:
        """Run into ``output`` (default: the recipe's ``output.path``), resuming an unfinished run of
        it (``fresh``: start over); returns the run's ``RunStats``."""
        from corpusforge.runner import run

        recipe = self.recipe
        target = str(output or recipe.output.path)
        stats = run(recipe, target, workers=workers, progress=progress, executor=executor, address=address,
                    fresh=fresh)
        return RunStats(stats, target if "://" in target else Path(target).resolve(), recipe.curate_only)

    def __repr__(self) -> str:
        names = [s.get("name") for s in self._data["sources"]]
        return f"Pipeline(recipe={self._data.get('name')!r}, sources={names}, steps={len(self._data['steps'])})"
