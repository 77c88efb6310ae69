"""Privacy and provenance steps: PII redaction, secrets redaction, code license policy."""
