"""The deterministic pipeline: ingest -> strategy -> risk -> execution -> accounting.

Pure: time comes from the event clock, randomness from named seeded streams, and nothing here
touches files; the runner's caller owns all I/O.
"""
