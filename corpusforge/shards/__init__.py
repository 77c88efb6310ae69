"""Packing token streams into fixed-length samples and writing, indexing and validating shards."""
