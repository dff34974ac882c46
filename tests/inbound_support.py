"""Builders for hearing-back tests: a Cloud API sender, campaign messages in chosen states,
signed webhook bodies as Meta shapes them, and the exactness checks (counters, stats)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests.campaigns_support import assert_counters_exact, make_campaign, make_contacts, make_sender
from wabulk.analytics import stats
from wabulk.db import Database
from wabulk.dispatch import queue
from wabulk.models import Channel, Message, MessageStat, Sender, SenderState
from wabulk.senders import secrets
from wabulk.senders.pace import Pace

SECRET_KEY = "test-secret-key-not-for-production"
APP_SECRET = "app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-token-xyz"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"


def make_cloud_sender(
    db: Database,
    name: str = "Cloud",
    phone_number_id: str = PHONE_NUMBER_ID,
    app_secret: str = APP_SECRET,
    secret_key: str = SECRET_KEY,
) -> int:
    """A linked Cloud API sender with its secrets stored as the product stores them."""
    settings = secrets.store(
        {"phone_number_id": phone_number_id, "waba_id": WABA_ID},
        secret_key,
        {"access_token": "EAAG-token", "app_secret": app_secret, "verify_token": VERIFY_TOKEN},
    )
    with db.session() as session:
        sender = Sender(
            name=name, channel=Channel.CLOUD_API, state=SenderState.LINKED, settings=settings
        )
        session.add(sender)
        session.flush()
        return sender.id


def campaign_for(
    db: Database, n: int, cloud_sender: int, prefix: str = "+9198765", name: str = "Sale"
) -> tuple[int, list[int]]:
    """A running campaign of `n` recipients (launched on a rehearsal sender, which the
    Cloud API sender then joins by claiming); returns (campaign id, message ids)."""
    list_id = make_contacts(db, [f"{prefix}{i:05d}" for i in range(n)], f"List {name}")
    rehearsal = make_sender(db, f"Rehearsal {name}")
    campaign_id = make_campaign(db, [list_id], [rehearsal], name=name)
    with db.session() as session:
        ids = session.scalars(
            select(Message.id).where(Message.campaign_id == campaign_id).order_by(Message.id)
        ).all()
    return campaign_id, list(ids)


def claim_all(db: Database, campaign_id: int, sender_id: int, now: datetime, owner: str) -> list:
    with db.session() as session:
        return queue.claim(
            session,
            campaign_id=campaign_id,
            body="Hello {{ name }}",
            sender_id=sender_id,
            owner=owner,
            limit=10_000,
            now=now,
            lease_until=now + timedelta(minutes=5),
            pace=Pace(),
        )


def settle_sent(
    db: Database, claimed: list, sender_id: int, now: datetime, owner: str
) -> dict[int, str]:
    """The dispatcher's own settle of these as sent; returns message id → wamid."""
    wamids = {c.id: wamid(c.id) for c in claimed}
    outcomes = [queue.Outcome(c.id, c.campaign_id, "sent", wamids[c.id]) for c in claimed]
    with db.session() as session:
        queue.settle(session, owner, outcomes, now, sender_id=sender_id)
    return wamids


def wamid(message_id: int) -> str:
    return f"wamid.HBgL{message_id:08d}AAA="


def ts(at: datetime) -> str:
    return str(int(at.timestamp()))


def status(
    message_id: int | None,
    state: str,
    at: datetime,
    phone: str = "919876500000",
    provider_id: str | None = None,
    category: str | None = None,
    error_code: int | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": provider_id or (wamid(message_id) if message_id else "wamid.unknown"),
        "status": state,
        "timestamp": ts(at),
        "recipient_id": phone,
    }
    if message_id is not None:
        record["biz_opaque_callback_data"] = str(message_id)
    if category:
        record["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": category,
        }
    if error_code is not None:
        record["errors"] = [
            {
                "code": error_code,
                "title": "Meta's title",
                "message": "Meta's title",
                "error_data": {"details": "Meta's details"},
            }
        ]
    return record


def envelope(
    field: str, value: dict[str, Any], phone_number_id: str | None = PHONE_NUMBER_ID
) -> dict[str, Any]:
    if phone_number_id is not None:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            **value,
        }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": field, "value": value}]}],
    }


def statuses_body(records: list[dict[str, Any]], phone_number_id: str = PHONE_NUMBER_ID) -> bytes:
    return encode(envelope("messages", {"statuses": records}, phone_number_id))


def inbound_body(
    message: dict[str, Any],
    phone: str | None = "919876500000",
    user_id: str | None = None,
    at: datetime | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
) -> bytes:
    contact: dict[str, Any] = {"profile": {"name": "Deepa"}}
    record = {"id": message.pop("id"), "timestamp": ts(at) if at else "1765000000", **message}
    if phone is not None:
        contact["wa_id"] = phone
        record["from"] = phone
    if user_id is not None:
        contact["user_id"] = user_id
        record["from_user_id"] = user_id
    value = {"contacts": [contact], "messages": [record]}
    return encode(envelope("messages", value, phone_number_id))


def encode(payload: dict[str, Any]) -> bytes:
    # As Meta sends it: non-ASCII escaped, so the signature is over exactly these bytes.
    return json.dumps(payload, ensure_ascii=True).encode()


def sign(body: bytes, app_secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _stat_rows(session: Any) -> Counter:
    rows = session.execute(
        select(
            MessageStat.slot,
            MessageStat.campaign_id,
            MessageStat.sender_id,
            MessageStat.kind,
            MessageStat.code,
            MessageStat.n,
        )
    ).all()
    return Counter({tuple(r[:5]): r[5] for r in rows if r[5]})


def stats_snapshot(db: Database) -> Counter:
    """Every non-zero `message_stats` count, keyed by (slot, campaign, sender, kind, code)."""
    with db.session() as session:
        return _stat_rows(session)


def stats_rebuilt(db: Database, campaign_ids: list[int] | None = None) -> Counter:
    """What `rebuild` writes, read inside its transaction and then rolled back."""
    with db.sessionmaker() as session:
        stats.rebuild(session, campaign_ids)
        rows = _stat_rows(session)
        session.rollback()
    return rows


def assert_exact(db: Database, *campaign_ids: int) -> Counter:
    """Counters equal a recount and `message_stats` equal a rebuild; returns the stats."""
    for campaign_id in campaign_ids:
        assert_counters_exact(db, campaign_id)
    kept = stats_snapshot(db)
    assert kept == stats_rebuilt(db)
    return kept


def by_kind(kept: Counter) -> Counter:
    out: Counter = Counter()
    for (_slot, _campaign, _sender, kind, code), n in kept.items():
        out[kind] += n
        if code:
            out[f"{kind}:{code}"] += n
    return out
