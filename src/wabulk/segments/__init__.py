"""Segments: saved audiences defined by conditions (docs/segments.md)."""
