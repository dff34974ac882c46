"""Campaigns with outcomes at chosen times, for dashboard and analytics tests.

Messages get their statuses and times written directly (weeks of history cannot be sent in
a test), then the campaign's counters and `message_stats` are brought in line the way the
product's own rebuild does it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from wabulk.analytics import stats
from wabulk.auth import service as users
from wabulk.campaigns.service import campaign_counts_by_status
from wabulk.db import Database
from wabulk.models import Campaign, Message, Role

from .conftest import login


def seed_outcomes(
    db: Database, campaign_id: int, sender_id: int, outcomes: list[dict[str, Any]]
) -> None:
    """Give the campaign's first messages these values (status, sent_at, …), in id order."""
    with db.session() as session:
        ids = session.scalars(
            select(Message.id).where(Message.campaign_id == campaign_id).order_by(Message.id)
        ).all()
        assert len(ids) >= len(outcomes), "the campaign has fewer recipients than outcomes"
        for mid, values in zip(ids, outcomes, strict=False):
            session.execute(
                update(Message).where(Message.id == mid).values(sender_id=sender_id, **values)
            )
        counts = campaign_counts_by_status(session, campaign_id)
        replied = session.scalar(
            select(func.count()).where(
                Message.campaign_id == campaign_id, Message.replied_at.is_not(None)
            )
        )
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(n_replied=replied, **{f"n_{k}": v for k, v in counts.items()})
        )
        stats.rebuild(session, [campaign_id])


def sent(at: datetime, status: str = "sent", **more: datetime) -> dict[str, Any]:
    return {"status": status, "sent_at": at, **more}


def failed(at: datetime, code: str) -> dict[str, Any]:
    return {"status": "failed", "failed_at": at, "error_code": code, "error_detail": code}


def signed_in(
    app: Flask, db: Database, role: Role = Role.VIEWER, tz: str | None = None
) -> FlaskClient:
    """A test client of `app` signed in as a new user of `role`, in timezone `tz`."""
    email = f"{role.value}-{tz or 'utc'}@example.com".replace("/", "-").lower()
    with db.session() as session:
        user = users.create_user(session, None, email, "correct horse battery", role)
        user.timezone = tz
    client = app.test_client()
    response = login(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
