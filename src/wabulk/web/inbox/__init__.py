"""The Inbox pages: conversations, answers, the team's actions; Settings → Quick replies."""

from __future__ import annotations

from .quick_replies_views import bp as quick_replies_bp
from .views import bp

__all__ = ["bp", "quick_replies_bp"]
