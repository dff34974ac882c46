"""The demo data set's saved segment: a new user sees an example on the Segments page, it
matches some of the demo customers, and `wabulk demo --remove` takes it (keeping it when a
campaign of the user's goes to it). On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.analytics_support import signed_in
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.demo import load_demo, remove_demo, samples
from wabulk.models import Campaign, Contact, Role, Segment
from wabulk.segments import service as segments


def _load(db, instance: Path):  # type: ignore[no-untyped-def]
    with db.session() as session:
        return load_demo(session, None, instance)


def _remove(db, instance: Path):  # type: ignore[no-untyped-def]
    with db.session() as session:
        return remove_demo(session, None, instance)


def _expected(db) -> set[int]:  # type: ignore[no-untyped-def]
    """Mumbai customers owing over 1,000, worked out here in Python from their fields."""
    with db.session() as session:
        people = session.scalars(
            select(Contact).where(
                Contact.opted_out_at.is_(None), Contact.not_on_whatsapp_at.is_(None)
            )
        ).all()
        return {
            c.id
            for c in people
            if (c.attributes or {}).get("city") == "Mumbai"
            and float(str((c.attributes or {}).get("due_amount", "0")).replace(",", "")) > 1000
        }


def test_the_demo_brings_a_segment_and_its_removal_takes_it(dual, tmp_path: Path) -> None:
    app, db = dual
    instance = tmp_path / "instance"
    loaded = _load(db, instance)
    assert loaded.segment == samples.SEGMENT_NAME
    assert f"  segment: {samples.SEGMENT_NAME}" in loaded.lines()
    expected = _expected(db)
    assert expected, "the example segment should match some demo customers"
    with db.session() as session:
        seg = session.scalars(select(Segment)).one()
        assert seg.is_demo and seg.name.startswith("Demo")
        assert segments.count(session, seg.terms) == (len(expected), False)
        assert {c.id for c in segments.sample(session, seg.terms, n=100)} == expected

    page = signed_in(app, db, Role.VIEWER).get("/segments").get_data(as_text=True)
    assert seg.name.replace("'", "&#39;") in page and 'data-testid="segments"' in page

    _remove(db, instance)
    with db.session() as session:
        assert session.scalars(select(Segment)).all() == []


def test_a_demo_segment_a_users_campaign_goes_to_is_kept(dual, tmp_path: Path) -> None:
    _app, db = dual
    instance = tmp_path / "instance"
    _load(db, instance)
    with db.session() as session:
        seg_id = session.scalars(select(Segment.id)).one()
        draft = save_draft(session, None, DraftInput(name="My dues reminder", segment_id=seg_id))
        draft_id = draft.id
    removed = _remove(db, instance)
    assert any(line.startswith("Kept the segment") for line in removed.kept), removed.kept
    with db.session() as session:
        kept = session.get(Segment, seg_id)
        assert kept is not None and kept.is_demo is False
        campaign = session.get(Campaign, draft_id)
        assert campaign is not None and campaign.segment_id == seg_id
