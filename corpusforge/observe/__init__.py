"""Reporting on a run and its output: statistics, progress, audit log and quarantine records, lineage,
the data card and HTML report, experiment tracking. What edits a finished output is in ``maintain/``."""
