"""Where documents come from: files anywhere fsspec reaches (any format, detected by content),
web pages and REST APIs, HuggingFace datasets, SQL databases, git repositories; plus the input
manifest that makes re-runs incremental."""
