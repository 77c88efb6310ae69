"""Sentence embeddings of the curated documents: the recipe's ``embeddings`` stage and its outputs."""
