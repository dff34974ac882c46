"""What the live-figures-in-Hindi browser tests share: a shop whose users read Hindi, with one
campaign running."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import update

from wabulk.db import Database
from wabulk.models import User

from ..analytics_support import seed_outcomes
from ..campaigns_support import make_campaign, make_contacts, make_sender, phones
from .test_analytics_charts import _instance


def hindi_shop(tmp_path: Path, outcomes: Sequence[dict[str, Any]] = ()) -> tuple[Path, int]:
    """An instance (its users read Hindi) where "Diwali" is sending to 1,200 customers from
    "Shop phone", its first messages given `outcomes`: (the instance, the campaign's id)."""
    instance = _instance(tmp_path)
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        with db.session() as session:
            session.execute(update(User).values(language="hi"))
            session.commit()
        list_id = make_contacts(db, phones(1200), "Customers")
        sender = make_sender(db, "Shop phone")
        campaign = make_campaign(db, [list_id], [sender], name="Diwali")
        if outcomes:
            seed_outcomes(db, campaign, sender, list(outcomes))
    finally:
        db.dispose()
    return instance, campaign
