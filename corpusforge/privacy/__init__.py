"""Privacy steps: PII, secrets and code licenses."""
