"""Recurring campaigns' pages: repeat a draft, a series' page with its runs, its moves."""

from .views import bp

__all__ = ["bp"]
