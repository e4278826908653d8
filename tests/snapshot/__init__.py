"""Tests of the snapshot catalog and the CSV importer, run through the CLI and in process."""
