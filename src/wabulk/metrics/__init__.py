"""/metrics: the Prometheus text built from the database at scrape time.

- Everything comes from the database (maintained counters, the aggregates, the workers'
  rows), so every web process answers the same, and a scrape of any of them sees the
  whole cluster. Backlogs are gauges read now; counters are totals the database keeps.
- A fixed number of cheap statements per scrape, whatever the number of messages or of
  finished campaigns (the tests count them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from .exposition import CONTENT_TYPE, render
from .inflow import import_families, outbox_families, receipt_families
from .sending import campaign_families, sender_families, sender_names
from .workers import worker_families

__all__ = ["CONTENT_TYPE", "exposition"]


def exposition(session: Session, now: datetime) -> str:
    """The whole scrape, as one text."""
    senders = sender_names(session)
    families = [
        *campaign_families(session),
        *sender_families(session, senders),
        *worker_families(session, now),
        *receipt_families(session, now),
        *import_families(session),
        *outbox_families(session, now),
    ]
    return render(families)
