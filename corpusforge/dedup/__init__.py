"""Deduplication steps: each signs documents per task and decides in a stage of its own."""
