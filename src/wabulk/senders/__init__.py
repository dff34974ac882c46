"""Sending accounts: linking, health and limits."""
