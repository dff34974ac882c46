"""The webhook receiver: Meta's handshake, signed POSTs stored raw and answered, anything
unsigned refused with nothing stored, and the stored delivery applied by the worker."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from tests.inbound_support import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WABA_ID,
    campaign_for,
    claim_all,
    make_cloud_sender,
    settle_sent,
    sign,
    status,
    statuses_body,
)
from tests.support import running_server
from wabulk.dispatch import receipts
from wabulk.models import Event, Message, MessageStatus, Sender, WebhookReceipt, utcnow


def stored(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(WebhookReceipt))


def test_the_handshake_echoes_the_challenge_only_for_the_right_token(dual) -> None:
    app, db = dual
    sender_id = make_cloud_sender(db)
    client = app.test_client()
    url = f"/webhooks/whatsapp/{sender_id}"
    good = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = client.get(url, query_string=good)
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "1158201444"
    assert answer.mimetype == "text/plain"
    for wrong in (
        {**good, "hub.verify_token": VERIFY_TOKEN + "x"},
        {**good, "hub.mode": "unsubscribe"},
        {k: v for k, v in good.items() if k != "hub.verify_token"},
    ):
        refused = client.get(url, query_string=wrong)
        assert refused.status_code == 403 and "1158201444" not in refused.get_data(as_text=True)
    assert client.get("/webhooks/whatsapp/999999", query_string=good).status_code == 404


def test_unsigned_or_wrongly_signed_posts_are_refused_and_counted(dual) -> None:
    app, db = dual
    sender_id = make_cloud_sender(db)
    client = app.test_client()
    url = f"/webhooks/whatsapp/{sender_id}"
    body = statuses_body([status(1, "read", utcnow())])
    attempts = [
        {},
        {"X-Hub-Signature-256": sign(body, APP_SECRET + "x")},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": sign(body + b" ")},
    ]
    for headers in attempts:
        answer = client.post(url, data=body, headers=headers, content_type="application/json")
        assert answer.status_code == 403
    assert stored(db) == 0
    with db.session() as session:
        health = session.get(Sender, sender_id).health
        logged = session.scalars(select(Event.text).where(Event.kind == "webhook.refused")).all()
    assert health["webhooks_refused"] == len(attempts)
    # A flood is counted, not logged line by line: one Event a minute.
    assert len(logged) == 1 and "no signature" in logged[0]
    assert APP_SECRET not in logged[0]


def test_a_forged_post_is_refused_even_when_its_count_cannot_be_written(dual, monkeypatch) -> None:
    """The worker may hold SQLite's write lock past the busy timeout on a loaded machine:
    the forged post still gets its 403 (not "busy, try again"), and nothing is stored."""
    from sqlalchemy.exc import OperationalError

    app, db = dual
    sender_id = make_cloud_sender(db)

    def busy(*_args: object) -> None:
        raise OperationalError("UPDATE senders", {}, Exception("database is locked"))

    monkeypatch.setattr(receipts, "note_refusal", busy)
    body = statuses_body([status(1, "read", utcnow())])
    answer = app.test_client().post(
        f"/webhooks/whatsapp/{sender_id}",
        data=body,
        headers={"X-Hub-Signature-256": sign(body, APP_SECRET + "x")},
        content_type="application/json",
    )
    assert answer.status_code == 403
    assert stored(db) == 0


def test_a_signed_post_is_stored_once_and_applied_by_the_worker(dual) -> None:
    app, db = dual
    sender_id = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 2, sender_id)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, sender_id, t0, "lane:1"), sender_id, t0, "lane:1")
    client = app.test_client()
    url = f"/webhooks/whatsapp/{sender_id}"
    body = statuses_body([status(i, "delivered", t0) for i in ids])
    # Two signatures, as while a secret rotates: either may be the right one.
    headers = {"X-Hub-Signature-256": f"sha256={'ab' * 32}, {sign(body)}"}
    for _ in range(2):  # Meta retries the same bytes: stored once, answered 200 both times
        answer = client.post(url, data=body, headers=headers, content_type="application/json")
        assert answer.status_code == 200
    assert stored(db) == 1
    with db.session() as session:
        # Nothing is applied by the answer itself.
        assert set(session.scalars(select(Message.status).where(Message.id.in_(ids)))) == {
            MessageStatus.SENT
        }
    assert receipts.process_receipts(db) == 1  # due from when it was received
    with db.session() as session:
        assert set(session.scalars(select(Message.status).where(Message.id.in_(ids)))) == {
            MessageStatus.DELIVERED
        }


def test_too_large_bodies_and_unknown_senders_are_refused(dual) -> None:
    app, db = dual
    sender_id = make_cloud_sender(db)
    client = app.test_client()
    big = b'{"entry": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    answer = client.post(
        f"/webhooks/whatsapp/{sender_id}",
        data=big,
        headers={"X-Hub-Signature-256": sign(big)},
        content_type="application/json",
    )
    assert answer.status_code == 413
    body = statuses_body([])
    assert (
        client.post(
            "/webhooks/whatsapp/424242", data=body, headers={"X-Hub-Signature-256": sign(body)}
        ).status_code
        == 404
    )
    assert stored(db) == 0


def test_over_real_http_the_worker_applies_a_delivery_soon_after_the_answer(
    migrated_db, settings
) -> None:
    """`wabulk serve` with its embedded worker: the POST's nudge wakes the receipts loop."""
    from pathlib import Path

    db = migrated_db
    sender_id = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 3, sender_id)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, sender_id, t0, "lane:1"), sender_id, t0, "lane:1")
    with running_server(
        Path(settings.instance_path),
        WABULK_DATABASE_URL=db.engine.url.render_as_string(hide_password=False),
        WABULK_SECRET_KEY=settings.secret_key,
    ) as server:
        body = statuses_body([status(i, "read", t0) for i in ids])
        answer = httpx.post(
            f"{server.url}/webhooks/whatsapp/{sender_id}",
            content=body,
            headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 200
        deadline = time.monotonic() + 60
        while True:
            with db.session() as session:
                statuses = set(session.scalars(select(Message.status).where(Message.id.in_(ids))))
            if statuses == {MessageStatus.READ} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert statuses == {MessageStatus.READ}


def test_what_the_fake_cloud_api_posts_is_heard(migrated_db, settings, fake_cloud) -> None:
    """Meta's shapes as the stand-in posts them, signed, to a served app with its worker:
    a STOP, a user with no number, a marketing opt-out, a RED rating, a forged post."""
    from pathlib import Path

    from wabulk.models import Contact, Inbound

    db = migrated_db
    sender_id = make_cloud_sender(db)
    with db.session() as session:
        session.add_all([Contact(phone="+919876500001"), Contact(phone="+919876500002")])
    fake_cloud.add_number(PHONE_NUMBER_ID, WABA_ID, "EAAG-token", APP_SECRET)
    with running_server(
        Path(settings.instance_path),
        WABULK_DATABASE_URL=db.engine.url.render_as_string(hide_password=False),
        WABULK_SECRET_KEY=settings.secret_key,
    ) as server:
        fake_cloud.set_webhook(PHONE_NUMBER_ID, f"{server.url}/webhooks/whatsapp/{sender_id}")
        fake_cloud.inbound(PHONE_NUMBER_ID, from_phone="+919876500001", text="Stop")
        fake_cloud.inbound(PHONE_NUMBER_ID, text="hello", no_phone=True, user_id="IN.777")
        fake_cloud.user_preference(PHONE_NUMBER_ID, "+919876500002", stop=True)
        fake_cloud.quality_update(PHONE_NUMBER_ID, event="FLAGGED", rating="RED")
        assert fake_cloud.post_raw(PHONE_NUMBER_ID, {"entry": []}, signature="bad") == 403
        deadline = time.monotonic() + 60
        while True:
            with db.session() as session:
                pending = session.scalar(
                    select(func.count())
                    .select_from(WebhookReceipt)
                    .where(WebhookReceipt.processed_at.is_(None))
                )
                done = session.scalar(select(func.count()).select_from(WebhookReceipt))
            if (done == 4 and pending == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    with db.session() as session:
        opted = dict(session.execute(select(Contact.phone, Contact.opted_out_at)).all())
        replies = session.scalars(select(Inbound).order_by(Inbound.id)).all()
        sender = session.get(Sender, sender_id)
        refused = session.scalars(select(Event.text).where(Event.kind == "webhook.refused")).all()
        stopped = session.scalars(select(Event.text).where(Event.kind == "sender.stopped")).all()
    assert opted["+919876500001"] is not None and opted["+919876500002"] is not None
    assert [(r.body, r.phone, r.wa_user_id, r.opted_out) for r in replies] == [
        ("Stop", "+919876500001", None, True),
        ("hello", None, "IN.777", False),
    ]
    # The state and the log, not `health`: the worker's template sync (which fails here, with
    # no route to Meta) rewrites `health` from what it read before its request.
    assert sender.state.value == "limited" and len(stopped) == 1 and "low (red)" in stopped[0]
    assert len(refused) == 1 and "does not match" in refused[0]
