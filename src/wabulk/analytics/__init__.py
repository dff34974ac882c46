"""Aggregates for the dashboard and charts."""
