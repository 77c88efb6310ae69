"""Privacy steps."""
