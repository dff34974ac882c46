"""Campaign pages (blueprint "campaigns"): page.py the list and one campaign's page,
wizard.py the draft's form, actions.py the moves on a campaign, reports.py the read-only
parts, reports and summary. The modules' routes join the one blueprint on import."""

from . import actions, reports, wizard  # noqa: F401  (their routes join the blueprint)
from .page import bp

__all__ = ["bp"]
