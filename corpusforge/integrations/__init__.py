"""Entry points for the systems teams already run corpusforge inside (Spark, Airflow)."""
