"""Copying the store to the team's warehouse: BigQuery, Redshift, DuckDB or Parquet files."""
