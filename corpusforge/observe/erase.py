"""Moved to ``corpusforge.maintain.erase``; this re-export serves ``pipeline.py`` until it imports from there."""
from corpusforge.maintain.erase import erased_ids  # noqa: F401
