"""A body in a running campaign: rendered with no database lock held, bounded, and a body
that goes past its bounds fails its own message with a sentence while the rest are sent
(issue 14, item 3: an endless loop used to hold SQLite's write lock, so every write,
sign-in included, answered "database is locked" until the campaign was cancelled)."""

from __future__ import annotations

import io
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    drive,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from wabulk.campaigns import lifecycle, rendering
from wabulk.campaigns.media import save_media
from wabulk.campaigns.render_budget import CAPTION_LIMIT, TEXT_LIMIT, limit_for
from wabulk.campaigns.rendering import TemplateError
from wabulk.campaigns.service import send_test
from wabulk.channels.dry_run import log_path, read_log
from wabulk.db import Database
from wabulk.dispatch import queue, recovery
from wabulk.models import Campaign, CampaignStatus, Message, MessageStatus, Role, Template, utcnow
from wabulk.senders.pace import Pace
from wabulk.web.templates_views import PREVIEW_MAX_BYTES

from ..conftest import get_csrf

ENDLESS = "{% for a in 'x' * 20000 %}{% for b in 'x' * 20000 %}{% endfor %}{% endfor %}"
# Person 1 gets the endless loop; everyone else a normal message.
BODY = "{% if name == 'Person 1' %}" + ENDLESS + "{% else %}Hi {{ name }}{% endif %}"


def messages_of(db: Database, campaign_id: int) -> dict[str, Message]:
    with db.session() as session:
        rows = session.scalars(select(Message).where(Message.campaign_id == campaign_id))
        return {m.phone: m for m in rows}


def test_rendering_holds_no_database_lock(
    migrated_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = migrated_db
    if not db.is_sqlite:
        pytest.skip("SQLite's write lock is the whole file's; PostgreSQL locks rows")
    list_id = make_contacts(db, phones(4), "Customers")
    sender_id = make_sender(db)
    campaign_id = make_campaign(db, [list_id], [sender_id], body="Hi {{ name }}")
    path = db.engine.url.database
    writes: list[str] = []
    real_render = rendering.CompiledBody.render

    def render_while_someone_writes(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Another connection that will not wait: it gets the write lock only if no
        # transaction of the dispatcher holds it while this body runs.
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            writes.append("written")
        except sqlite3.OperationalError as exc:
            writes.append(str(exc))
        finally:
            other.close()
        return real_render(self, *args, **kwargs)

    monkeypatch.setattr(rendering.CompiledBody, "render", render_while_someone_writes)
    clock = FakeClock(utcnow() + timedelta(seconds=1))
    drive([make_lane(db, sender_id, tmp_path, clock)], clock, db)
    assert writes == ["written"] * 4
    assert {m.status for m in messages_of(db, campaign_id).values()} == {MessageStatus.SENT}


def test_a_body_past_its_bounds_fails_its_message_and_the_campaign_goes_on(
    migrated_db: Database, tmp_path: Path
) -> None:
    db = migrated_db
    numbers = phones(5)
    list_id = make_contacts(db, numbers, "Customers")
    sender_id = make_sender(db)
    campaign_id = make_campaign(db, [list_id], [sender_id], body=BODY)
    clock = FakeClock(utcnow() + timedelta(seconds=1))
    drive([make_lane(db, sender_id, tmp_path, clock)], clock, db)

    got = messages_of(db, campaign_id)
    looped = got[numbers[1]]
    assert looped.status == MessageStatus.FAILED
    assert looped.error_code == "template_error"
    assert looped.error_detail == (
        "The message could not be written: Line 1: this message does too much work to "
        "prepare (a loop, repeat or macro runs too many times); make it simpler"
    )
    assert looped.body is None  # nothing of it was stored
    others = [got[p] for p in numbers if p != numbers[1]]
    assert {m.status for m in others} == {MessageStatus.SENT}
    assert [m.body for m in others] == [f"Hi Person {i}" for i in (0, 2, 3, 4)]
    with db.session() as session:
        assert lifecycle.complete_finished(session, clock.now()) == [campaign_id]
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == CampaignStatus.COMPLETED
    assert_counters_exact(db, campaign_id)
    sent = read_log(log_path(tmp_path, "Rehearsal"))
    assert len(sent) == 4


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


def test_a_caption_longer_than_1024_characters_fails_with_whatsapps_limit(
    migrated_db: Database, tmp_path: Path
) -> None:
    db = migrated_db
    numbers = phones(2)
    list_id = make_contacts(db, numbers, "Customers")
    sender_id = make_sender(db)
    with db.session() as session:
        media_id = save_media(session, io.BytesIO(png()), "Offer.png", tmp_path, 10**6).id
    # 1,030 characters for Person 0, 30 for Person 1.
    body = "{% if name == 'Person 0' %}{{ 'x' * 1000 }}{% endif %}Hello {{ name }}, see the offer!"
    campaign_id = make_campaign(db, [list_id], [sender_id], body=body, media_id=media_id)
    clock = FakeClock(utcnow() + timedelta(seconds=1))
    drive([make_lane(db, sender_id, tmp_path, clock)], clock, db)

    got = messages_of(db, campaign_id)
    assert got[numbers[0]].status == MessageStatus.FAILED
    assert got[numbers[0]].error_detail == (
        "The message could not be written: the message comes to 1,030 characters once "
        "filled in; WhatsApp allows 1,024 in the caption of a photo or video"
    )
    assert got[numbers[1]].status == MessageStatus.SENT
    assert_counters_exact(db, campaign_id)


def test_which_limit_applies() -> None:
    assert limit_for("image/png") == limit_for("video/mp4") == CAPTION_LIMIT
    assert limit_for("application/pdf") == limit_for(None) == TEXT_LIMIT


class Stopped(BaseException):
    """The worker process dying (nothing in it catches this)."""


def test_a_worker_stopping_while_it_renders_leaves_nothing_lost_nor_unknown(
    migrated_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = migrated_db
    numbers = phones(3)
    list_id = make_contacts(db, numbers, "Customers")
    sender_id = make_sender(db)
    campaign_id = make_campaign(db, [list_id], [sender_id], body="{Hi|Hello|Hey} {{ name }}")
    now = utcnow() + timedelta(seconds=1)

    def claim(owner: str, at):  # type: ignore[no-untyped-def]
        with db.session() as session:
            return queue.claim(
                session,
                campaign_id=campaign_id,
                body="{Hi|Hello|Hey} {{ name }}",
                sender_id=sender_id,
                owner=owner,
                limit=10,
                now=at,
                lease_until=at + timedelta(minutes=2),
                pace=Pace(),
            )

    def die(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Stopped

    with monkeypatch.context() as patch:
        patch.setattr(rendering.CompiledBody, "render", die)
        with pytest.raises(Stopped):
            claim("dead:1", now)
    held = messages_of(db, campaign_id)
    # The claim was committed before rendering, so the rows are held, with no text yet.
    assert {(m.status, m.body) for m in held.values()} == {(MessageStatus.SENDING, None)}

    later = now + timedelta(minutes=3)
    hold = timedelta(seconds=1)
    for moment in (later, later + 2 * hold):  # taken, then asked a hold later
        with db.session() as session:
            assert recovery.expire_stale_leases(session, tmp_path, moment, hold=hold) == 3
    after = messages_of(db, campaign_id)
    assert {m.status for m in after.values()} == {MessageStatus.QUEUED}  # not `unknown`
    assert {m.attempts for m in after.values()} == {0}

    claimed = claim("live:1", later + 2 * hold)
    compiled = rendering.compile_body("{Hi|Hello|Hey} {{ name }}")
    for c in claimed:
        person = f"Person {numbers.index(c.phone)}"
        assert c.text == compiled.render({"name": person}, seed=c.id)  # the same text
    assert len(claimed) == 3
    assert_counters_exact(db, campaign_id)


# --- the preview ---------------------------------------------------------------------------


def preview(client: FlaskClient, **data):  # type: ignore[no-untyped-def]
    token = get_csrf(client, "/templates")
    return client.post("/templates/preview.json", data=data, headers={"X-CSRFToken": token})


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ("{{ (((9**64)**64)**64)**64 > 1 }}", "Line 1: a number in this message would grow past"),
        (ENDLESS, "Line 1: this message does too much work to prepare"),
        ("{% for i in 'x' * 20000 %}{{ 'y' * 500 }}{% endfor %}", "comes to more than 20,000"),
        ("{{ 'y' * 5000 }}", "comes to 5,000 characters once filled in; WhatsApp allows 4,096"),
    ],
)
def test_a_viewers_preview_ends_with_the_sentence_a_send_would_give(
    client: FlaskClient, as_role, db: Database, body: str, sentence: str
) -> None:
    as_role(Role.VIEWER)
    list_id = make_contacts(db, phones(2), "Customers")
    response = preview(client, body=body, list_ids=[list_id])
    assert response.status_code == 200
    result = response.get_json()
    assert result["samples"] == []
    assert result["error"].startswith(sentence) or sentence in result["error"], result["error"]


def test_a_preview_body_longer_than_a_message_is_refused_unrendered(
    client: FlaskClient, as_role, db: Database
) -> None:
    as_role(Role.VIEWER)
    list_id = make_contacts(db, phones(1), "Customers")
    result = preview(client, body="x" * 4097, list_ids=[list_id]).get_json()
    assert result["error"] == "The message has 4,097 characters; WhatsApp allows 4,096."


class CountingStream(io.BytesIO):
    """A request body that records how much of it the server read."""

    def __init__(self, size: int) -> None:
        super().__init__(b"body=" + b"x" * (size - 5))
        self.taken = 0

    def read(self, n: int | None = -1) -> bytes:
        chunk = super().read(n)
        self.taken += len(chunk)
        return chunk

    def readline(self, limit: int | None = -1) -> bytes:
        line = super().readline(limit)
        self.taken += len(line)
        return line


def test_an_oversized_preview_request_is_refused_before_it_is_read(
    client: FlaskClient, as_role
) -> None:
    as_role(Role.VIEWER)
    token = get_csrf(client, "/templates")
    stream = CountingStream(PREVIEW_MAX_BYTES + 1)
    response = client.post(
        "/templates/preview.json",
        input_stream=stream,
        content_length=PREVIEW_MAX_BYTES + 1,
        content_type="application/x-www-form-urlencoded",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == (
        "The message is too long to preview; WhatsApp allows 4,096 characters."
    )
    assert stream.taken == 0
    # The largest real preview (4,096 four-byte characters, percent-encoded) still fits.
    widest = preview(client, body="🎉" * 4096)
    assert widest.status_code == 200
    assert widest.get_json()["error"] is None


def test_the_preview_holds_a_photos_caption_to_1024_characters(
    client: FlaskClient, as_role, db: Database, settings
) -> None:
    as_role(Role.VIEWER)
    list_id = make_contacts(db, phones(1), "Customers")
    with db.session() as session:
        media_id = save_media(
            session, io.BytesIO(png()), "Offer.png", settings.instance_path, 10**6
        ).id
        template = Template(name="Offer", body="{{ 'x' * 1030 }}", media_id=media_id)
        session.add(template)
        session.flush()
        template_id = template.id
    saved = preview(client, template_id=template_id, list_ids=[list_id]).get_json()
    assert saved["error"] == (
        "the message comes to 1,030 characters once filled in; "
        "WhatsApp allows 1,024 in the caption of a photo or video"
    )
    typed = preview(client, body="{{ 'x' * 1030 }}", media_id=media_id, list_ids=[list_id])
    assert typed.get_json()["error"] == saved["error"]
    plain = preview(client, body="{{ 'x' * 1030 }}", list_ids=[list_id]).get_json()
    assert plain["error"] is None and plain["samples"][0]["text"] == "x" * 1030


def test_a_test_send_with_a_photo_holds_the_caption_to_1024_characters(
    migrated_db: Database, tmp_path: Path
) -> None:
    db = migrated_db
    list_id = make_contacts(db, phones(1), "Customers")
    sender_id = make_sender(db)
    with db.session() as session:
        media_id = save_media(session, io.BytesIO(png()), "Offer.png", tmp_path, 10**6).id
    campaign_id = make_campaign(
        db, [list_id], [sender_id], body="{{ 'x' * 1030 }}", media_id=media_id, launch=False
    )
    with db.session() as session, pytest.raises(TemplateError) as caught:
        send_test(session, None, campaign_id, phones(1)[0], sender_id, tmp_path)
    assert str(caught.value).endswith("WhatsApp allows 1,024 in the caption of a photo or video")
    assert not log_path(tmp_path, "Rehearsal").exists()  # nothing was sent


def test_a_batch_whose_rendering_outlives_its_lease_goes_back_to_the_queue(
    migrated_db: Database,
) -> None:
    db = migrated_db
    list_id = make_contacts(db, phones(3), "Customers")
    sender_id = make_sender(db)
    campaign_id = make_campaign(db, [list_id], [sender_id], body="Hi {{ name }}")
    now = utcnow() + timedelta(seconds=1)
    with db.session() as session:
        # A lease already over: no render may start, so none of the batch is kept.
        got = queue.claim(
            session,
            campaign_id=campaign_id,
            body="Hi {{ name }}",
            sender_id=sender_id,
            owner="live:1",
            limit=10,
            now=now,
            lease_until=now - timedelta(seconds=1),
            pace=Pace(),
        )
    assert got == []
    after = messages_of(db, campaign_id)
    assert {(m.status, m.attempts, m.sender_id, m.body) for m in after.values()} == {
        (MessageStatus.QUEUED, 0, None, None)
    }
    assert_counters_exact(db, campaign_id)
