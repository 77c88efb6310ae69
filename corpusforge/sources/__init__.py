"""Where documents come from: files anywhere fsspec reaches (any format, detected by content),
web pages and REST APIs, HuggingFace datasets, SQL databases, git repositories, an earlier
corpusforge output; plus the input manifest that makes re-runs incremental.

``create_source`` makes one for ``corpusforge.Pipeline.add_source`` (docs/api.md)."""

from __future__ import annotations

import copy
from typing import Any


class SourceSpec:
    """A recipe source (its dict form, as under ``sources:`` in YAML), checked when made: an
    unknown type or option is a ``RecipeError`` at once, not when the run starts."""

    def __init__(self, spec: dict[str, Any]):
        from corpusforge.config import build
        from corpusforge.registry import SOURCES

        self._spec = copy.deepcopy(spec)
        build(SOURCES, {"type": "files", "name": self._spec.get("name", "source"), **self._spec},
              f"source {self._spec.get('name', self._spec.get('type', 'files'))!r}")

    @property
    def name(self) -> str | None:
        return self._spec.get("name")

    def to_dict(self) -> dict[str, Any]:
        """The spec as a recipe's ``sources`` entry (a copy)."""
        return copy.deepcopy(self._spec)

    def __repr__(self) -> str:
        return f"SourceSpec({self._spec!r})"


def create_source(kind: str, **options: Any) -> SourceSpec:
    """A source by catalog dataset (``corpusforge datasets``: ``create_source("wikitext",
    max_samples=1000)``, ``local_path=`` for a local copy) or by source type
    (``create_source("files", path="data/", text_unit="paragraph")``) with that type's options."""
    from corpusforge.registry import SOURCES
    from corpusforge.sources.catalog import CATALOG, collect_recipe

    if kind in CATALOG:
        max_samples, local_path = options.pop("max_samples", None), options.pop("local_path", None)
        spec = collect_recipe(kind, max_samples, local_path=local_path)["sources"][0]
        return SourceSpec({**spec, **options})
    if kind not in SOURCES:
        from corpusforge.errors import RecipeError
        from corpusforge.sources.catalog import entry

        try:
            entry(kind)  # a near miss of a dataset name says "did you mean"
        except RecipeError as exc:
            raise RecipeError(f"{kind!r} is neither a catalog dataset nor a source type "
                              f"({', '.join(SOURCES.names())}): {exc}") from None
    return SourceSpec({"type": kind, "name": options.pop("name", kind), **options})
