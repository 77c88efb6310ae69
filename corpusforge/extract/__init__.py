"""Extraction steps (HTML, PDF, office documents)."""
