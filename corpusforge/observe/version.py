"""Moved to ``corpusforge.maintain.version``; this re-export serves ``runner.py`` until it imports from there."""
from corpusforge.maintain.version import write_version  # noqa: F401
