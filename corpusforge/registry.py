"""Name → class registries, so a YAML ``type: word_count`` finds its class.

Built-in components register themselves when their module is imported; ``load_builtins`` imports
every module of the component packages once, and third-party packages can add their own through
the ``corpusforge.plugins`` entry-point group. Component modules must not import heavy optional
dependencies at module level: they are imported just to be listed.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from corpusforge.errors import RecipeError

T = TypeVar("T")

_COMPONENT_PACKAGES = (
    "corpusforge.sources",
    "corpusforge.extract",
    "corpusforge.curate",
    "corpusforge.privacy",
    "corpusforge.dedup",
    "corpusforge.models",
    "corpusforge.tokenize",
    "corpusforge.shards",
)
_loaded = False


class Registry:
    """One namespace of registered names (steps, sources, shard formats, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice: {self._items[name]} and {obj}")
            self._items[name] = obj
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return deco

    def get(self, name: str, where: str = "type") -> Any:
        load_builtins()
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise RecipeError(
                f"{where}: unknown {self.kind} {name!r}{hint} Allowed: {', '.join(sorted(self._items))}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        load_builtins()
        return name in self._items


STEPS = Registry("step")
SOURCES = Registry("source")
SHARD_FORMATS = Registry("shard format")


def register(name: str) -> Callable[[T], T]:
    """Register a step class under ``name`` (the value of ``type:`` in a recipe)."""
    return STEPS.register(name)


def load_builtins() -> None:
    """Import every component module once so their ``@register`` decorators run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for pkg_name in _COMPONENT_PACKAGES:
        if importlib.util.find_spec(pkg_name) is None:
            continue  # a component package this checkout does not have (yet)
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__, pkg_name + "."):
            importlib.import_module(info.name)
    for ep in entry_points(group="corpusforge.plugins"):
        ep.load()
