"""Tests of the crash-safe JSON Lines state store and its operator commands."""
