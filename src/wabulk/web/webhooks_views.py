"""The Cloud API webhook receiver: verify, store raw, answer (DESIGN §8).

- No sign-in and no CSRF token: Meta signs each POST with the app secret instead, and an
  unsigned or wrongly signed one is refused with 403 and nothing stored.
- Fast: nothing is parsed or applied here. The body is stored as received and the worker
  applies it, so the answer takes milliseconds and a crash after it loses nothing.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from ..channels.cloud_api.webhook import MAX_BODY, verify_signature
from ..dispatch import receipts
from ..models import Channel, Sender, utcnow
from ..senders.secrets import SecretUnreadable, reveal
from .helpers import db_session, get_settings
from .security import csrf, public

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)

MAX_CHALLENGE = 200


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
    sender = _sender(sender_id)
    if sender is None:
        return _plain("No such sender.", 404)
    declared = request.content_length
    if declared is not None and declared > MAX_BODY:
        return _plain("Too large.", 413)
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _plain("Too large.", 413)
    now = utcnow()
    secret = _secret(sender, "app_secret")
    header = request.headers.get("X-Hub-Signature-256")
    if secret is None or not verify_signature(secret, body, header):
        why = (
            "the sender's app secret is missing or unreadable"
            if secret is None
            else "it carried no signature"
            if not header
            else "its signature does not match the app secret"
        )
        session.rollback()
        receipts.note_refusal(session, sender.id, why, now)
        session.commit()
        return _plain("Signature refused.", 403)
    receipts.store_receipt(session, sender.id, body, now)
    session.commit()
    receipts.nudge()
    return _plain("OK", 200)
