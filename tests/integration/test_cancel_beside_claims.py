"""Cancel beside a worker's claim on PostgreSQL never deadlocks.

A claim takes its messages' rows and then the campaign's row (its counters); a cancel takes
the campaign's row and then skips the queued messages. Had the cancel waited for a row the
claim holds, each would wait for the other until PostgreSQL killed one ("deadlock
detected"): a Cancel pressed mid-send answered with an error, or a worker's claim failed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk import migrate
from wabulk.campaigns import lifecycle
from wabulk.db import Database
from wabulk.models import Campaign, CampaignStatus, Message, MessageStatus

pytestmark = pytest.mark.postgres


def test_a_cancel_skips_past_rows_a_claim_holds_and_the_sweep_takes_them(
    postgres_database: str, tmp_path: Path
) -> None:
    db = Database(postgres_database)
    migrate.upgrade(db.engine)
    try:
        list_id = make_contacts(db, phones(20), "Everyone")
        sender = make_sender(db, "Rehearsal")
        campaign_id = make_campaign(db, [list_id], [sender])
        with db.session() as session:
            held = session.scalars(
                Message.__table__.select()
                .with_only_columns(Message.id)
                .where(Message.campaign_id == campaign_id)
                .order_by(Message.id)
                .limit(3)
            ).all()

        # The claim's first half: its messages' rows, locked and not yet committed.
        claim = db.engine.connect()
        claim_tx = claim.begin()
        claim.execute(
            text("SELECT id FROM messages WHERE id = ANY(:ids) FOR UPDATE"), {"ids": list(held)}
        )

        outcome: dict[str, object] = {}

        def press_cancel() -> None:
            try:
                with db.session() as session:
                    lifecycle.cancel(session, None, campaign_id)
                outcome["cancel"] = "done"
            except Exception as exc:  # the deadlock, before the fix
                outcome["cancel"] = exc

        cancelling = threading.Thread(target=press_cancel)
        cancelling.start()
        # Let the cancel get as far as it goes: done, or waiting on a lock.
        deadline = time.monotonic() + 60
        while cancelling.is_alive() and time.monotonic() < deadline:
            with db.engine.connect() as look:
                waiting = look.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database() AND query LIKE 'UPDATE messages%'"
                    )
                ).scalar()
            if waiting:
                break
            time.sleep(0.05)
        # The claim's second half: the campaign's counters.
        try:
            claim.execute(
                text("UPDATE campaigns SET n_queued = n_queued WHERE id = :id"), {"id": campaign_id}
            )
            claim_tx.rollback()  # as a claim whose worker stopped: its rows stay queued
            outcome["claim"] = "done"
        except Exception as exc:
            outcome["claim"] = exc
        finally:
            claim.close()
        cancelling.join(60)
        assert outcome == {"cancel": "done", "claim": "done"}

        with db.session() as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None and campaign.status == CampaignStatus.CANCELLED
            assert campaign.n_queued == 3  # the rows the claim held, left to the sweep
            assert lifecycle.skip_cancelled(session, lifecycle.utcnow()) == 3
        with db.session() as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            statuses = set(
                session.scalars(
                    Message.__table__.select()
                    .with_only_columns(Message.status)
                    .where(Message.campaign_id == campaign_id)
                ).all()
            )
            assert (campaign.n_queued, campaign.n_skipped, statuses) == (
                0,
                20,
                {MessageStatus.SKIPPED},
            )
    finally:
        db.dispose()
