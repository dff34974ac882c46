"""Follow-ups on a campaign's page: add, edit and remove a draft's steps; each step's funnel."""

from __future__ import annotations

from .views import bp

__all__ = ["bp"]
