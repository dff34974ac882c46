"""Contacts, lists, imports, opt-outs and export."""
