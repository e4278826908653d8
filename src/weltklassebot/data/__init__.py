"""Market-data edge: Parquet snapshot metadata, streaming readers, validation, import and catalog.

Market data stays in columns (Arrow/NumPy); nothing here creates one Python object per bar.
"""
