"""Exceptions that say what went wrong and where."""

from __future__ import annotations


class CorpusforgeError(Exception):
    """Base class for every error corpusforge raises on purpose."""


class RecipeError(CorpusforgeError):
    """The recipe is invalid: the message names the field, the value and what is allowed."""


class CorruptInput(CorpusforgeError):
    """One record or file cannot be read; the task quarantines it and goes on.

    ``location`` is "path line N" / "path byte N" / "path row N" so a user can find the record.
    """

    def __init__(self, location: str, reason: str, raw: bytes | str | None = None):
        super().__init__(f"{location}: {reason}")
        self.location, self.reason, self.raw = location, reason, raw


class UnusableInput(CorpusforgeError):
    """The sources gave no document, or more than ``max_quarantine_fraction`` of their records were
    quarantined: the run stops after curation, its stats.json and quarantine/ kept for a look."""


class InputChanged(CorpusforgeError):
    """An input differs from what an earlier, unfinished run of the same output recorded."""


class ValidationFailed(CorpusforgeError):
    """An output directory does not satisfy its own index."""


class AccessError(CorpusforgeError):
    """A source or output cannot be reached: missing credentials, an unreachable endpoint or hub, a
    missing bucket or file, an unset environment variable or a missing filesystem package. The
    message names the source or output and the reason; the command ends with it, exit code 1."""
