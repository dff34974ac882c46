"""Integrations: Settings → Webhooks, where an admin sends events to n8n, Zapier, Make or
their own server (the events themselves: wabulk.outbox)."""

from __future__ import annotations

from .webhooks_views import bp

__all__ = ["bp"]
