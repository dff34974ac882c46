"""`wabulk demo`: the sample data set, its live campaign, and removing it without harm."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    make_campaign,
    make_lane,
    make_sender,
)
from wabulk.analytics import stats
from wabulk.campaigns import lifecycle
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.channels.dry_run import log_path, read_log
from wabulk.contacts import lists as contact_lists
from wabulk.contacts import service as contacts
from wabulk.contacts import tallies
from wabulk.contacts.phones import normalise
from wabulk.db import Database
from wabulk.demo import is_loaded, load_demo, remove_demo, samples
from wabulk.models import (
    AppSetting,
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    Event,
    Inbound,
    Message,
    MessageStat,
    MessageStatus,
    Role,
    Segment,
    Sender,
    SenderState,
    Template,
    list_members,
    utcnow,
)

from ..conftest import get_csrf, login
from ..support import run_wabulk

DEMO_MODELS = (Contact, ContactList, Template, Sender, Campaign, Segment)
S = MessageStatus


def _load(db: Database, instance: Path):  # type: ignore[no-untyped-def]
    with db.session() as session:
        return load_demo(session, None, instance)


def _remove(db: Database, instance: Path):  # type: ignore[no-untyped-def]
    with db.session() as session:
        return remove_demo(session, None, instance)


def _count(db: Database, model: Any, *where: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _table_counts(db: Database) -> dict[str, int]:
    models = (*DEMO_MODELS, Message, Inbound, MessageStat, Event, AppSetting)
    counts = {m.__name__: _count(db, m) for m in models}
    counts["members"] = _count(db, list_members)
    return counts


def _stats(db: Database) -> Counter:
    with db.session() as session:
        rows = session.execute(
            select(
                MessageStat.slot,
                MessageStat.campaign_id,
                MessageStat.sender_id,
                MessageStat.kind,
                MessageStat.code,
                MessageStat.n,
            )
        )
        return Counter({tuple(r[:5]): r[5] for r in rows if r[5]})


def assert_aggregates_exact(db: Database) -> None:
    """Message statistics equal a rebuild, tallies and member counts equal a recount."""
    kept_stats = _stats(db)
    with db.session() as session:
        kept_tallies = tallies.totals(session)
        kept_members = dict(session.execute(select(ContactList.id, ContactList.member_count)).all())
        session.rollback()
        stats.rebuild(session)
        recounted = tallies.recount(session)
        members = dict(session.execute(select(ContactList.id, ContactList.member_count)).all())
    assert _stats(db) == kept_stats
    assert recounted == kept_tallies
    assert members == kept_members
    for campaign_id in _ids(db, Campaign):
        assert_counters_exact(db, campaign_id)
        with db.session() as session:
            replied = session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.campaign_id == campaign_id, Message.replied_at.is_not(None))
            )
            assert session.get(Campaign, campaign_id).n_replied == replied  # type: ignore[union-attr]


def _ids(db: Database, model: Any, *where: Any) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(model.id).where(*where).order_by(model.id)))


def _row(db: Database, model: Any, row_id: int) -> dict[str, Any]:
    with db.session() as session:
        obj = session.get(model, row_id)
        assert obj is not None
        return {c.key: getattr(obj, c.key) for c in model.__table__.columns}


def test_load_makes_a_labelled_consistent_sample_set(dual, settings) -> None:
    _app, db = dual
    before = utcnow()
    result = _load(db, settings.instance_path)
    assert not result.already and result.contacts == samples.CONTACT_COUNT

    assert _count(db, Contact) == _count(db, Contact, Contact.is_demo) == samples.CONTACT_COUNT
    assert _count(db, ContactList, ContactList.is_demo) == 2
    assert _count(db, Template, Template.is_demo) == 3
    assert _count(db, Campaign, Campaign.is_demo) == 5
    with db.session() as session:
        assert is_loaded(session)
        for model in (ContactList, Template, Sender, Campaign):
            names = session.scalars(select(model.name)).all()
            assert names and all(n.startswith("Demo") for n in names), names
        sender = session.scalars(select(Sender)).one()
        assert (sender.is_demo, sender.channel.value, sender.state) == (
            True,
            "dry_run",
            SenderState.LINKED,
        )
        assert sender.min_delay_seconds >= 1 and sender.max_delay_seconds <= 10
        phones = session.scalars(select(Contact.phone)).all()
        assert all(normalise(p, "").e164 == p and p.startswith("+44207946") for p in phones)
        assert session.scalar(select(func.count()).where(Contact.opted_out_at.is_not(None))) >= 3
        assert session.scalar(select(func.count()).where(Contact.not_on_whatsapp_at.is_not(None)))
        lists = session.scalars(select(ContactList)).all()
        members = [
            set(
                session.scalars(
                    select(list_members.c.contact_id).where(list_members.c.list_id == x.id)
                )
            )
            for x in lists
        ]
        assert all(len(m) > 40 for m in members) and members[0] & members[1]  # some in both
        cities = {c.attributes.get("city") for c in session.scalars(select(Contact))}
        assert len(cities) > 5
        assert session.scalar(
            select(func.count()).where(Contact.attributes["due_amount"].is_not(None))
        )

        by_status = {c.status: c for c in session.scalars(select(Campaign).order_by(Campaign.id))}
        assert set(by_status) == {
            CampaignStatus.COMPLETED,
            CampaignStatus.RUNNING,
            CampaignStatus.SCHEDULED,
        }
        finished = session.scalars(
            select(Campaign).where(Campaign.status == CampaignStatus.COMPLETED)
        ).all()
        assert len(finished) == 3
        outcomes = Counter(
            session.scalars(
                select(Message.status).where(Message.campaign_id.in_([c.id for c in finished]))
            )
        )
        assert all(outcomes[s] > 0 for s in (S.SENT, S.DELIVERED, S.READ, S.FAILED, S.SKIPPED))
        assert outcomes[S.QUEUED] == outcomes[S.SENDING] == outcomes[S.UNKNOWN] == 0
        for c in finished:
            assert before - timedelta(days=22) < c.launched_at < c.finished_at < before
        for m in session.scalars(select(Message).where(Message.sent_at.is_not(None))):
            assert m.sending_at <= m.sent_at < before
            assert m.delivered_at is None or m.sent_at <= m.delivered_at < before
            assert m.read_at is None or m.delivered_at <= m.read_at < before
            assert m.body and "{{" not in m.body and "|" not in m.body
        failed = session.scalars(select(Message).where(Message.status == S.FAILED)).all()
        assert {"not_on_whatsapp"} <= {m.error_code for m in failed}
        assert all(m.error_detail for m in failed)
        replies = session.scalars(select(Inbound)).all()
        assert len(replies) >= 5 and {"STOP"} < {r.body for r in replies}
        assert all(r.contact_id and r.message_id and r.campaign_id for r in replies)

        live = by_status[CampaignStatus.RUNNING]
        assert live.id == result.live_campaign_id and live.n_queued == live.total > 0
        scheduled = by_status[CampaignStatus.SCHEDULED]
        assert before + timedelta(hours=1) < scheduled.scheduled_at < before + timedelta(days=2)
        assert session.scalar(select(Event).where(Event.kind == "demo.loaded"))
        assert _count(db, MessageStat) > 0
    assert_aggregates_exact(db)


def test_loading_twice_changes_nothing(dual, settings) -> None:
    _app, db = dual
    _load(db, settings.instance_path)
    counts = _table_counts(db)
    again = _load(db, settings.instance_path)
    assert again.already
    assert again.lines() == ["Demo data is already loaded. Remove it with `wabulk demo --remove`."]
    assert _table_counts(db) == counts


def _send_live_campaign(db: Database, instance: Path, campaign_id: int) -> None:
    """The demo sender's lane, the engine's own, under a fake clock: pacing costs no time."""
    with db.session() as session:
        sender_id = session.scalars(select(Sender.id).where(Sender.is_demo)).one()
    clock = FakeClock()
    lane = make_lane(db, sender_id, instance, clock)
    try:
        for _ in range(5_000):
            wait = lane.step()
            if wait is None:
                break
            clock.advance(wait)
    finally:
        lane.close()
    with db.session() as session:
        assert lifecycle.complete_finished(session, clock.now()) == [campaign_id]


def test_the_live_campaign_sends_through_the_engine_and_removal_takes_its_log(
    dual, settings
) -> None:
    _app, db = dual
    instance = settings.instance_path
    live_id = _load(db, instance).live_campaign_id
    assert live_id is not None
    _send_live_campaign(db, instance, live_id)
    with db.session() as session:
        live = session.get(Campaign, live_id)
        assert live is not None and live.status == CampaignStatus.COMPLETED
        assert live.n_queued == live.n_sending == 0
        sent = live.n_sent + live.n_delivered + live.n_read
        assert sent > 0 and sent + live.n_failed == live.total
        sender_name = session.scalars(select(Sender.name)).one()
    dry_run_log = log_path(instance, sender_name)
    assert len(read_log(dry_run_log)) == sent
    assert_aggregates_exact(db)

    removed = _remove(db, instance)
    assert removed.campaigns == 5 and removed.senders == 1 and not removed.kept
    assert not dry_run_log.exists()
    _assert_no_demo_rows(db)
    assert_aggregates_exact(db)


def _assert_no_demo_rows(db: Database) -> None:
    for model in DEMO_MODELS:
        assert _count(db, model, model.is_demo) == 0, model.__name__
    with db.session() as session:
        assert not is_loaded(session)
        assert session.scalar(select(Event).where(Event.kind == "demo.removed"))


def test_remove_takes_only_demo_rows_and_keeps_what_the_users_data_needs(dual, settings) -> None:
    _app, db = dual
    instance = settings.instance_path
    # The user's own data before loading, with a number inside the sample range.
    with db.session() as session:
        mine = Contact(phone="+442079460000", name="Real Customer", attributes={"city": "Leeds"})
        session.add(mine)
        session.flush()
        own_list = contact_lists.create_list(session, None, "My customers")
        contacts.add_to_list(session, None, own_list.id, [mine.id])
        tallies.recount(session)
        mine_id, own_list_id = mine.id, own_list.id
    own_sender = make_sender(db, "My dry run")
    before_campaign = make_campaign(db, [own_list_id], [own_sender], name="My first campaign")

    _load(db, instance)
    assert _count(db, Contact, Contact.is_demo) == samples.CONTACT_COUNT
    with db.session() as session:
        assert session.get(Contact, mine_id).is_demo is False  # type: ignore[union-attr]
        demo_lists = session.scalars(select(ContactList.id).where(ContactList.is_demo)).all()
        in_demo_lists = session.scalar(
            select(func.count()).where(
                list_members.c.contact_id == mine_id, list_members.c.list_id.in_(demo_lists)
            )
        )
        assert in_demo_lists == 0
        demo_contact = session.scalars(
            select(Contact).where(Contact.is_demo, Contact.opted_out_at.is_(None))
        ).first()
        assert demo_contact is not None
        demo_contact_id, demo_phone = demo_contact.id, demo_contact.phone
        template_id = session.scalars(select(Template.id).where(Template.is_demo)).first()
        # After loading: the user adds a demo contact to their list and messages it, and
        # starts a draft on a demo template.
        contacts.add_to_list(session, None, own_list_id, [demo_contact_id])
    after_campaign = make_campaign(db, [own_list_id], [own_sender], name="My second campaign")
    with db.session() as session:
        draft = save_draft(session, None, DraftInput(name="My draft", template_id=template_id)).id
    user_rows = {
        (Contact, mine_id): _row(db, Contact, mine_id),
        (ContactList, own_list_id): _row(db, ContactList, own_list_id),
        (Sender, own_sender): _row(db, Sender, own_sender),
        (Campaign, before_campaign): _row(db, Campaign, before_campaign),
        (Campaign, after_campaign): _row(db, Campaign, after_campaign),
        (Campaign, draft): _row(db, Campaign, draft),
    }
    user_messages = _ids(db, Message, Message.campaign_id.in_([before_campaign, after_campaign]))

    removed = _remove(db, instance)
    assert removed.contacts == samples.CONTACT_COUNT - 1
    assert removed.templates == 2 and removed.lists == 2 and removed.campaigns == 5
    assert any("1 demo contact(s)" in line for line in removed.kept)
    assert any(line.startswith("Kept the template") for line in removed.kept)

    for (model, row_id), row in user_rows.items():
        assert _row(db, model, row_id) == row, model.__name__
    assert _ids(db, Message, Message.campaign_id.in_([before_campaign, after_campaign])) == (
        user_messages
    )
    with db.session() as session:
        kept = session.get(Contact, demo_contact_id)
        assert kept is not None and kept.phone == demo_phone and kept.is_demo is False
        assert session.get(Template, template_id).is_demo is False  # type: ignore[union-attr]
        assert session.get(Campaign, draft).template_id == template_id  # type: ignore[union-attr]
    assert _count(db, Contact) == 2
    assert _count(db, Message, Message.campaign_id.not_in([before_campaign, after_campaign])) == 0
    assert (
        _count(db, MessageStat, MessageStat.campaign_id.not_in([before_campaign, after_campaign]))
        == 0
    )
    _assert_no_demo_rows(db)
    assert_aggregates_exact(db)

    assert _remove(db, instance).lines() == ["There is no demo data to remove."]
    # Loading again works beside what was kept: the kept template's name is taken, so the new
    # one is told apart, and the kept contact's number is left alone.
    again = _load(db, instance)
    assert f"Demo {samples.DASH} Festive offer (2)" in again.templates
    assert again.phones_skipped == 2 and again.contacts == samples.CONTACT_COUNT
    assert_aggregates_exact(db)


def test_a_copy_of_a_demo_campaign_keeps_its_list_and_sender_and_still_launches(
    dual, settings
) -> None:
    _app, db = dual
    instance = settings.instance_path
    live_id = _load(db, instance).live_campaign_id
    assert live_id is not None
    with db.session() as session:
        copy_id = lifecycle.duplicate(session, None, live_id).id
        live = session.get(Campaign, live_id)
        assert live is not None
        list_id, sender_id = live.lists[0].id, live.senders[0].id
        members = set(
            session.scalars(
                select(list_members.c.contact_id).where(list_members.c.list_id == list_id)
            )
        )
        list_name = live.lists[0].name
    (instance / "dry_run").mkdir(parents=True, exist_ok=True)
    with db.session() as session:
        sender_name = session.get(Sender, sender_id).name  # type: ignore[union-attr]
    log_path(instance, sender_name).write_text("")

    removed = _remove(db, instance)
    assert f"Kept the list {list_name!r}: one of your campaigns uses it." in removed.kept
    assert any(line.startswith("Kept the sender") for line in removed.kept)
    assert removed.lists == 1 and removed.senders == 0
    assert removed.contacts == samples.CONTACT_COUNT - len(members)
    assert log_path(instance, sender_name).exists()  # the kept sender keeps its log
    _assert_no_demo_rows(db)
    assert_aggregates_exact(db)
    with db.session() as session:
        copy = session.get(Campaign, copy_id)
        assert copy is not None
        assert [x.id for x in copy.lists] == [list_id] and [s.id for s in copy.senders] == [
            sender_id
        ]
        kept_members = set(
            session.scalars(
                select(list_members.c.contact_id).where(list_members.c.list_id == list_id)
            )
        )
        assert kept_members == members
    with db.session() as session:
        launched = lifecycle.launch(session, None, copy_id)
        assert launched.status == CampaignStatus.RUNNING and launched.total > 40


def test_web_load_and_remove_need_an_admin_and_a_form_token(dual, settings) -> None:
    app, db = dual
    client = app.test_client()
    with db.session() as session:
        from wabulk.auth import service as users

        users.create_user(session, None, "op@example.com", "correct horse battery", Role.OPERATOR)
        users.create_user(session, None, "boss@example.com", "correct horse battery", Role.ADMIN)

    assert login(client, "op@example.com").status_code == 302
    token = get_csrf(client, "/settings/")
    refused = client.post("/demo", data={"csrf_token": token})
    assert refused.status_code == 403
    assert client.post("/demo/remove", data={"csrf_token": token}).status_code == 403
    assert _count(db, Campaign) == 0
    client.post("/logout", data={"csrf_token": token})

    assert login(client, "boss@example.com").status_code == 302
    assert client.post("/demo").status_code == 400  # no CSRF token
    assert _count(db, Campaign) == 0
    token = get_csrf(client, "/settings/")
    loaded = client.post("/demo", data={"csrf_token": token}, follow_redirects=True)
    page = loaded.get_data(as_text=True)
    assert loaded.status_code == 200 and "Demo data loaded: 150 contacts" in page
    assert "You are exploring demo data." in page
    assert 'action="/demo/remove"' in page and "data-confirm=" in page
    assert _count(db, Campaign, Campaign.is_demo) == 5
    again = client.post("/demo", data={"csrf_token": token}, follow_redirects=True)
    assert "Demo data is already loaded." in again.get_data(as_text=True)
    assert _count(db, Campaign) == 5

    other = app.test_client()
    login(other, "op@example.com")
    shell = other.get("/contacts/").get_data(as_text=True)
    assert "You are exploring demo data." in shell and 'action="/demo/remove"' not in shell

    removed = client.post("/demo/remove", data={"csrf_token": token}, follow_redirects=True)
    page = removed.get_data(as_text=True)
    assert "Removed the demo data: 5 campaigns, 150 contacts" in page
    assert "You are exploring demo data." not in page
    _assert_no_demo_rows(db)


def test_the_dashboard_offer_shows_a_button_to_admins_and_a_sentence_to_others(app, db) -> None:
    from flask import render_template
    from flask_login import login_user

    from wabulk.auth import service as users

    with db.session() as session:
        admin = users.create_user(session, None, "a@example.com", "correct horse battery", "admin")
        viewer = users.create_user(
            session, None, "v@example.com", "correct horse battery", "viewer"
        )
    for user, button in ((admin, True), (viewer, False)):
        with app.test_request_context("/"):
            login_user(user)
            html = render_template("pages/_demo_button.html")
        assert ('action="/demo"' in html and 'name="csrf_token"' in html) is button
        assert ("An administrator can load demo data" in html) is not button


def test_the_cli_loads_once_and_removes(database_url, tmp_path) -> None:
    instance = tmp_path / "instance"
    env = {"WABULK_DATABASE_URL": database_url}
    assert run_wabulk(instance, "db", "upgrade", **env).returncode == 0
    loaded = run_wabulk(instance, "demo", **env)
    assert loaded.returncode == 0, loaded.stderr
    lists = f"Demo {samples.DASH} Retail customers, Demo {samples.DASH} Payment due"
    assert f"150 contacts in the lists {lists}" in loaded.stdout
    assert "campaign: Demo: Weekend flash sale (live)" in loaded.stdout
    assert "wabulk serve" in loaded.stdout
    again = run_wabulk(instance, "demo", **env)
    assert again.returncode == 0 and "Demo data is already loaded" in again.stdout
    removed = run_wabulk(instance, "demo", "--remove", **env)
    assert removed.returncode == 0, removed.stderr
    assert "Removed the demo data: 5 campaigns, 150 contacts, 2 lists" in removed.stdout
    nothing = run_wabulk(instance, "demo", "--remove", **env)
    assert nothing.returncode == 0 and "There is no demo data to remove." in nothing.stdout
