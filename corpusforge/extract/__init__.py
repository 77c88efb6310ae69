"""Extraction: text and media from every file format users have."""
