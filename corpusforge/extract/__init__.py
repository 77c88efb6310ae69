"""Extract steps."""
