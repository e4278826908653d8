"""Typed, frozen, validated configuration; loaded once at the edge and passed inward."""
