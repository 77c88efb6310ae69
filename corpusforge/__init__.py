"""corpusforge: raw corpora in, curated training-ready shards out."""

from __future__ import annotations

__version__ = "0.1.0"

from corpusforge.api import Pipeline, RunStats
from corpusforge.document import Document
from corpusforge.recipe import Recipe, load_recipe
from corpusforge.registry import register
from corpusforge.sources import create_source
from corpusforge.step import CorpusStep, Filter, Mapper, Step

__all__ = ["Document", "Recipe", "load_recipe", "register", "Step", "Filter", "Mapper", "CorpusStep", "run",
           "Pipeline", "RunStats", "create_source"]


def run(recipe: Recipe | dict | str, output: str | None = None, workers: int | None = None, progress: bool = False,
        executor: str | None = None, address: str | None = None):
    """Run a recipe (object, dict or YAML path) and return its stats; see ``corpusforge.runner.run``."""
    from corpusforge.runner import run as _run

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    return _run(recipe, output, workers=workers, progress=progress, executor=executor, address=address)
