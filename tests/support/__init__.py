"""Shared test builders: bars, chunks, Parquet snapshots, scripted strategies, engine runs."""
