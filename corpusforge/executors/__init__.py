"""Executors run a stage's tasks; all of them call ``corpusforge.pipeline.run_task``."""
