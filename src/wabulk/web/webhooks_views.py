"""The Cloud API webhook receiver: verify, store raw, answer (DESIGN §8).

- No sign-in and no CSRF token: Meta signs each POST with the app secret instead, and an
  unsigned or wrongly signed one is refused with 403 and nothing stored.
- Fast: nothing is parsed or applied here. The body is stored as received and the worker
  applies it, so the answer takes milliseconds and a crash after it loses nothing.
"""

from __future__ import annotations

import hmac
import json
import logging

from flask import Blueprint, Response, request
from sqlalchemy.exc import OperationalError

from ..channels.cloud_api.webhook import MAX_BODY, verify_signature
from ..db import driver_marks
from ..dispatch import receipts
from ..models import Channel, Sender, utcnow
from ..senders.secrets import SecretUnreadable, decrypt, reveal
from ..words import N_
from .helpers import db_session, get_settings
from .security import csrf, public

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)

MAX_CHALLENGE = 200
_SENDER_SQL = "SELECT channel, settings FROM senders WHERE id = {0}"
# App secrets in clear by their sealed form: a storm of POSTs decrypts each one once.
_opened: dict[tuple[str, str], str] = {}
_OPENED_MAX = 256


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")


def _sender(sender_id: int) -> Sender | None:
    sender = db_session().get(Sender, sender_id)
    if sender is None or sender.channel != Channel.CLOUD_API:
        return None
    return sender


def _secret(sender: Sender, name: str) -> str | None:
    try:
        return reveal(sender.settings or {}, get_settings().secret_key, name)
    except SecretUnreadable:
        return None


def _app_secret(sender_id: int) -> tuple[bool, str | None]:
    """(a Cloud API sender has this id, its app secret in clear or None).

    Read with the driver's own SQL and decrypted once per sealed value: this runs for
    every POST of a storm, where loading the sender through the ORM cost a fifth of it.
    """
    session = db_session()
    sql = _SENDER_SQL.format(driver_marks(session, 1)[0])
    row = session.connection().exec_driver_sql(sql, (sender_id,)).first()
    if row is None or row[0] != Channel.CLOUD_API.value:
        return False, None
    settings = row[1] if isinstance(row[1], dict) else json.loads(row[1] or "{}")
    sealed = (settings.get("secrets") or {}).get("app_secret")
    if not sealed:
        return True, None
    key = (get_settings().secret_key, sealed)
    clear = _opened.get(key)
    if clear is None:
        try:
            clear = decrypt(*key)
        except SecretUnreadable:
            return True, None
        if len(_opened) >= _OPENED_MAX:
            _opened.clear()
        _opened[key] = clear
    return True, clear


@bp.get("/whatsapp/<int:sender_id>")
@public
def verify(sender_id: int) -> Response:
    """Meta's handshake when the callback URL is saved: echo the challenge to the owner."""
    sender = _sender(sender_id)
    if sender is None:
        return _plain("No such sender.", 404)
    expected = _secret(sender, "verify_token") or ""
    given = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if (
        request.args.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(expected.encode(), given.encode())
        and challenge
        and len(challenge) <= MAX_CHALLENGE
    ):
        return _plain(challenge, 200)
    return _plain("Verification refused.", 403)


@bp.post("/whatsapp/<int:sender_id>")
@public
def receive(sender_id: int) -> Response:
    """Store a signed delivery and wake the worker; 403 for anything unsigned."""
    session = db_session()
    known, secret = _app_secret(sender_id)
    if not known:
        return _plain("No such sender.", 404)
    declared = request.content_length
    if declared is not None and declared > MAX_BODY:
        return _plain("Too large.", 413)
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _plain("Too large.", 413)
    now = utcnow()
    header = request.headers.get("X-Hub-Signature-256")
    if secret is None or not verify_signature(secret, body, header):
        why = (
            N_("the sender's app secret is missing or unreadable")
            if secret is None
            else N_("it carried no signature")
            if not header
            else N_("its signature does not match the app secret")
        )
        session.rollback()

        def count_it() -> None:
            receipts.note_refusal(session, sender_id, why, now)
            session.commit()

        try:
            if session.get_bind().dialect.name == "sqlite":
                receipts.write_polling(session, count_it)
            else:
                count_it()
        except OperationalError:
            # Counting the refusal is for the Senders page; the refusal itself must not
            # turn into "try again later" because the worker holds SQLite's write lock.
            session.rollback()
            log.warning(
                "a refused webhook for sender %s was not counted (database busy)", sender_id
            )
        return _plain("Signature refused.", 403)
    receipts.store_receipt(session, sender_id, body, now)
    session.commit()
    receipts.nudge()
    return _plain("OK", 200)
