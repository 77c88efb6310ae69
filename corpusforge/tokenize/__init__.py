"""Tokenizers: the fixed special tokens, training, loading and parallel encoding."""
