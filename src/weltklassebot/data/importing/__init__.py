"""The CSV importer's parts; ``weltklassebot.data.importer`` runs them and is the public entry.

One concept per module: ``source`` (reading the file), ``times`` and ``zones`` (timestamps),
``symbols``, ``volume`` (which volume column), ``anomalies`` (order, copied runs), ``bars`` and
``trades`` (one table kind each) and ``writer`` (the validated Parquet write). Layout detection
lives in ``weltklassebot.data.formats``. Data stays in columns; nothing here creates one Python
object per row.
"""
