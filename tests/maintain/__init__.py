"""Erasure and version records: the commands that edit a finished output."""
