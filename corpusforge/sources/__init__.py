"""Where documents come from: files anywhere fsspec reaches, in JSONL, Parquet, CSV or text."""
