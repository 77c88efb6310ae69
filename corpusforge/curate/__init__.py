"""Curation steps: normalization and quality filters."""
