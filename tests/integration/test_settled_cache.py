"""The settled past is read from the database once, and read again whenever it changes."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert

from wabulk.analytics import queries, settled, stats
from wabulk.contacts import tallies
from wabulk.models import MessageStat, utcnow

KOLKATA = ZoneInfo("Asia/Kolkata")


def _statements(db):  # type: ignore[no-untyped-def]
    """A list that collects the SQL statements the engine runs that read message_stats."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "message_stats" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    return seen


def test_a_second_read_of_the_past_asks_only_for_the_last_hour(migrated_db) -> None:
    db = migrated_db
    now = utcnow()
    with db.session() as session:
        stats.bump(session, [("sent", 1, 1, now - timedelta(days=3), None, 40)])
        stats.bump(session, [("sent", 1, 1, now, None, 2)])
        session.commit()
    period = queries.last_days(KOLKATA, 30)
    seen = _statements(db)
    with db.session() as session:
        first = queries.outcome_totals(session, period.start, period.end)
        reads_first = len(seen)
        second = queries.outcome_totals(session, period.start, period.end)
        reads_second = len(seen) - reads_first
    assert first.sent == second.sent == 42
    assert reads_first == 2  # the settled part, then the last hour
    assert reads_second == 1  # the last hour only


def test_a_late_count_rebuild_or_retry_is_seen_at_once(migrated_db) -> None:
    db = migrated_db
    now = utcnow()
    period = queries.last_days(KOLKATA, 30)
    with db.session() as session:
        stats.bump(session, [("failed", 1, 1, now - timedelta(days=2), "timeout", 5)])
        session.commit()
        assert queries.failure_reasons(session, period.start, period.end)[0].count == 5
        # A count dated in the past (a late webhook) moves the cached figure.
        stats.bump(session, [("failed", 1, 1, now - timedelta(days=2), "timeout", 1)])
        session.commit()
        assert queries.failure_reasons(session, period.start, period.end)[0].count == 6
        # Retrying the campaign forgets its failures, even days old.
        stats.forget_failed(session, 1)
        session.commit()
        assert queries.failure_reasons(session, period.start, period.end) == []


def test_rows_written_behind_its_back_are_not_seen_until_touched(migrated_db) -> None:
    """Proof the cache is used at all: a row slipped in without `touch` stays invisible."""
    db = migrated_db
    now = utcnow()
    period = queries.last_days(KOLKATA, 30)
    old = stats.slot_of(now - timedelta(days=5))
    with db.session() as session:
        stats.bump(session, [("sent", 1, 1, old, None, 3)])
        session.commit()
        assert queries.outcome_totals(session, period.start, period.end).sent == 3
        session.execute(
            insert(MessageStat).values(slot=old, campaign_id=2, sender_id=1, kind="sent", n=7)
        )
        session.commit()
        assert queries.outcome_totals(session, period.start, period.end).sent == 3
        settled.touch(session)
        session.commit()
        assert queries.outcome_totals(session, period.start, period.end).sent == 10


def test_an_opt_in_moves_the_opt_out_chart(migrated_db) -> None:
    from wabulk.contacts.service import opt_in, opt_out, upsert_contact

    db = migrated_db
    period = queries.last_days(KOLKATA, 30)
    with db.session() as session:
        contact, _ = upsert_contact(session, None, phone="+919876543210", name="Asha")
        opt_out(session, None, [contact.id], "Asked to stop")
        contact.opted_out_at = utcnow() - timedelta(days=4)  # as an old opt-out would be
        tallies.recount(session)
        session.commit()
        days = queries.opt_outs_per_day(session, period.start, period.end, KOLKATA)
        assert sum(d.count for d in days) == 1
        opt_in(session, None, contact.id, "Said yes again")
        session.commit()
        days = queries.opt_outs_per_day(session, period.start, period.end, KOLKATA)
        assert sum(d.count for d in days) == 0
