"""Cloud API senders: their channel settings, the connection check, synced templates and
uploaded media.

- Secrets are decrypted only in `channel_settings`, for the code that calls Meta; nothing
  here puts one in an Event, a log line or a returned sentence.
- A check or a sync that fails is an outcome, not an exception: the sentence is stored
  (state reason, Event) in the caller's transaction and the caller commits it, so the
  reason survives the failure it describes.
- Meta's account calls live in `channels/cloud_api/account.py`; this module owns what
  wabulk keeps of their answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import events
from ..campaigns.media import media_path
from ..channels.cloud_api import account
from ..channels.cloud_api.account import AccountError, AccountInfo
from ..config import Settings
from ..db import Database
from ..models import (
    Channel,
    CloudMedia,
    CloudTemplate,
    EventLevel,
    Media,
    Sender,
    SenderState,
    User,
    utcnow,
)
from ..words import N_, said
from . import pace, secrets
from .secrets import SecretUnreadable

log = logging.getLogger(__name__)

# Meta keeps an uploaded file 30 days; a day's margin so a campaign running across the
# expiry never sends a media id Meta has just forgotten.
MEDIA_LIFETIME = timedelta(days=30)
MEDIA_REUSE = timedelta(days=29)
SYNC_EVERY = timedelta(hours=1)
# Requests in flight at once on one sender when its settings name no other number: enough
# for 80 messages a second at a quarter-second answer time, with room to spare.
DEFAULT_IN_FLIGHT = 32
# Meta removes a deleted template from its list; our row stays (a campaign may name it) and
# says so with Meta's own status for deleted templates.
REMOVED = "DELETED"

QUALITY_WORDS = {"GREEN": N_("High"), "YELLOW": N_("Medium"), "RED": N_("Low")}
NOT_CHECKED = N_("Not checked yet: press Check connection.")


@dataclass(frozen=True)
class Checked:
    """The outcome of a connection check: what Meta said, or what is wrong."""

    info: AccountInfo | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.info is not None


@dataclass(frozen=True)
class SyncResult:
    added: int = 0
    updated: int = 0
    removed: int = 0
    problem: str | None = None  # the sentence when the account could not be read

    @property
    def ok(self) -> bool:
        return self.problem is None

    def sentence(self) -> str:
        if self.problem:
            return self.problem
        return said(
            "Templates synced: %(added)s new, %(updated)s updated, %(removed)s removed.",
            added=self.added,
            updated=self.updated,
            removed=self.removed,
        )


def is_cloud(sender: Sender) -> bool:
    return sender.channel == Channel.CLOUD_API


def channel_settings(sender: Sender, secret_key: str) -> dict[str, Any]:
    """The plain settings the Cloud API channel opens with, the access token decrypted.

    - Raises SecretUnreadable (a sentence for the shop owner) when the token is missing or
      cannot be decrypted with this installation's secret key.
    """
    stored = sender.settings or {}
    token = secrets.reveal(stored, secret_key, "access_token")
    if not token:
        raise SecretUnreadable(
            said(
                "%(name)s has no access token saved. Paste one in the sender's settings.",
                name=sender.name,
            )
        )
    return {
        "phone_number_id": str(stored.get("phone_number_id") or ""),
        "waba_id": str(stored.get("waba_id") or ""),
        "access_token": token,
        "api_version": str(stored.get("api_version") or ""),
        "use_marketing_messages": bool(stored.get("use_marketing_messages")),
        "marketing_ttl_seconds": stored.get("marketing_ttl_seconds"),
        "max_in_flight": int(stored.get("max_in_flight") or DEFAULT_IN_FLIGHT),
    }


def find_by_phone_number_id(session: Session, phone_number_id: str) -> Sender | None:
    """The Cloud API sender of this phone-number id (webhooks name the number this way).

    - Read in Python over the Cloud API senders: a JSON key is queried differently on
      SQLite and PostgreSQL, and an installation has a handful of senders.
    """
    wanted = str(phone_number_id).strip()
    for sender in session.scalars(select(Sender).where(Sender.channel == Channel.CLOUD_API)):
        if str((sender.settings or {}).get("phone_number_id") or "") == wanted:
            return sender
    return None


def messaging_tier_limit(health: dict[str, Any] | None) -> int | None:
    """Customers a rolling day the account's messaging-limit tier allows (None: unlimited).

    Unknown or never read: 250, the smallest tier, so an unchecked account is never pushed
    past what Meta allows a new one.
    """
    return pace.tier_limit(health or {})


def tier_words(health: dict[str, Any] | None) -> str:
    """The messaging-limit tier for a shop owner: "up to 2,000 customers a day"."""
    tier = str((health or {}).get("messaging_tier") or "").upper()
    if tier not in pace.TIERS:
        return N_("not known yet (counted as up to 250 customers a day)")
    limit = pace.TIERS[tier]
    if limit is None:
        return N_("no daily limit")
    return said("up to %(limit)s customers a day", limit=f"{limit:,}")


def quality_words(health: dict[str, Any] | None) -> str:
    rating = str((health or {}).get("quality_rating") or "").upper()
    return QUALITY_WORDS.get(rating, N_("not rated yet"))


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    return dict(options or {})


def check_connection(
    session: Session,
    sender: Sender,
    secret_key: str,
    options: dict[str, Any] | None,
    actor: User | None = None,
) -> Checked:
    """Ask Meta about the number and keep what it says in `sender.health`.

    - Success: display name, number, quality rating, throughput level, messaging tier and
      when they were read; a sender waiting for its check becomes linked.
    - Failure: the one-line sentence becomes the state reason and the sender needs linking
      (a limited or disabled sender keeps its state); the sentence is returned.
    - An Event either way.
    """
    try:
        info = account.check_connection(channel_settings(sender, secret_key), _options(options))
    except (AccountError, SecretUnreadable) as exc:
        problem = str(exc)
        _merge_health(session, sender, {"problem": problem, "problem_at": utcnow().isoformat()})
        # Meta unreachable or busy says nothing against the account: a linked sender stays
        # linked; anything about the token, the ids or the permissions unlinks it.
        passing = isinstance(exc, AccountError) and exc.kind in ("unreachable", "retry")
        if sender.state == SenderState.NEEDS_LINK or (
            sender.state == SenderState.LINKED and not passing
        ):
            sender.state = SenderState.NEEDS_LINK
            sender.state_reason = problem[:500]
        events.record(
            session,
            "sender.check_failed",
            said(
                "%(who)s checked the connection of %(name)s: %(problem)s",
                who=events.actor_name(actor),
                name=repr(sender.name),
                problem=problem,
            ),
            user=actor,
            level=EventLevel.WARNING,
            data={"sender_id": sender.id},
        )
        return Checked(None, problem)
    now = utcnow()
    health = _merge_health(
        session,
        sender,
        {
            "display_name": info.display_name,
            "display_phone": info.display_phone,
            "quality_rating": info.quality_rating,
            "throughput_level": info.throughput_level,
            "messaging_tier": info.messaging_tier,
            "account_name": info.account_name,
            "checked_at": now.isoformat(),
        },
        drop=("problem", "problem_at"),
    )
    if info.display_phone:
        sender.phone = str(info.display_phone)[:20]
    if sender.state == SenderState.NEEDS_LINK:
        sender.state = SenderState.LINKED
        sender.state_reason = None
    events.record(
        session,
        "sender.checked",
        said(
            "%(who)s checked the connection of %(name)s: %(shown)s (%(phone)s), quality "
            "%(what)s, messaging limit %(more)s.",
            who=events.actor_name(actor),
            name=repr(sender.name),
            shown=info.display_name or "the number",
            phone=info.display_phone or "number not shown",
            what=quality_words(health).lower(),
            more=tier_words(health),
        ),
        user=actor,
        data={"sender_id": sender.id},
    )
    return Checked(info)


def sync_templates(
    session: Session,
    sender: Sender,
    secret_key: str,
    options: dict[str, Any] | None,
    actor: User | None = None,
    by: str | None = None,
) -> SyncResult:
    """Bring the sender's CloudTemplate rows in line with the account's templates.

    - Matched by name and language (Meta's own key for a send); a template gone from the
      account keeps its row marked DELETED, so a campaign naming it says why it cannot send.
    - Failure leaves the rows as they were and returns the sentence; an Event either way.
    """
    now = utcnow()
    who = by or events.actor_name(actor)
    try:
        found = account.list_templates(channel_settings(sender, secret_key), _options(options))
    except (AccountError, SecretUnreadable) as exc:
        _merge_health(session, sender, {"templates_tried_at": now.isoformat()})
        problem = said("The templates could not be read: %(problem)s", problem=str(exc))
        events.record(
            session,
            "sender.sync_failed",
            said(
                "%(who)s could not sync the templates of %(name)s: %(problem)s",
                who=who,
                name=repr(sender.name),
                problem=str(exc),
            ),
            user=actor,
            level=EventLevel.WARNING,
            data={"sender_id": sender.id},
        )
        return SyncResult(problem=problem)
    rows = {
        (t.name, t.language): t
        for t in session.scalars(select(CloudTemplate).where(CloudTemplate.sender_id == sender.id))
    }
    added = updated = removed = 0
    seen: set[tuple[str, str]] = set()
    for item in found:
        key = (item.name, item.language)
        if key in seen:
            continue
        if len(item.name) > 512 or len(item.language) > 15:
            # Longer than Meta allows (512, a locale code): cutting it would name another
            # template, so it is left out and said in the log.
            log.warning(
                "sender %s: a template with an over-long name or language skipped", sender.id
            )
            continue
        seen.add(key)
        values = {
            "provider_id": (item.provider_id or "")[:100] or None,
            "category": str(item.category or "")[:40],
            "status": str(item.status or "")[:40],
            "quality": (str(item.quality)[:40] if item.quality else None),
            "parameter_format": str(item.parameter_format or "positional")[:20],
            "components": list(item.components or []),
        }
        row = rows.get(key)
        if row is None:
            session.add(
                CloudTemplate(
                    sender_id=sender.id,
                    name=item.name,
                    language=item.language,
                    synced_at=now,
                    **values,
                )
            )
            added += 1
            continue
        if any(getattr(row, k) != v for k, v in values.items()):
            updated += 1
            for k, v in values.items():
                setattr(row, k, v)
        row.synced_at = now
    for key, row in rows.items():
        if key not in seen and row.status != REMOVED:
            row.status = REMOVED
            row.synced_at = now
            removed += 1
    _merge_health(
        session,
        sender,
        {"templates_tried_at": now.isoformat(), "templates_synced_at": now.isoformat()},
    )
    result = SyncResult(added, updated, removed)
    events.record(
        session,
        "sender.templates_synced",
        said(
            "%(who)s synced the templates of %(name)s: %(count)s in the account; %(added)s "
            "new, %(updated)s updated, %(removed)s removed.",
            who=who,
            name=repr(sender.name),
            count=len(seen),
            added=added,
            updated=updated,
            removed=removed,
        ),
        user=actor,
        data={"sender_id": sender.id},
    )
    return result


def templates_of(sender_id: int) -> Select[CloudTemplate]:
    """The sender's synced templates, those still in the account first, then by name."""
    return (
        select(CloudTemplate)
        .where(CloudTemplate.sender_id == sender_id)
        .order_by((CloudTemplate.status == REMOVED), CloudTemplate.name, CloudTemplate.language)
    )


def sync_due(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Sync the templates of every linked Cloud API sender not synced (or tried) in the last
    hour; returns how many were tried.

    - Each sender in its own transaction: one account's failure is an Event on that sender
      and never stops the others or the worker.
    - Two workers may sync the same sender at the same moment; the loser's insert clashes on
      (sender, name, language) and is rolled back and logged: the winner's rows stand.
    """
    now = now or utcnow()
    with db.session() as session:
        candidates = [
            (s.id, s.health or {})
            for s in session.scalars(
                select(Sender).where(
                    Sender.channel == Channel.CLOUD_API, Sender.state == SenderState.LINKED
                )
            )
        ]
    tried = 0
    for sender_id, health in candidates:
        if not _due(health, now):
            continue
        tried += 1
        try:
            with db.session() as session:
                sender = session.get(Sender, sender_id)
                if sender is None or sender.state != SenderState.LINKED:
                    continue
                sync_templates(
                    session,
                    sender,
                    settings.secret_key,
                    settings.channel_options(),
                    by=N_("The hourly sync"),
                )
                session.commit()
        except IntegrityError:
            log.info("sender %s: templates synced by another worker at the same time", sender_id)
        except Exception:
            # One account's surprise must not stop the loop: say it in the log and the
            # sender's activity, and try again next hour.
            log.exception("sender %s: the hourly template sync failed", sender_id)
            _record_crash(db, sender_id, now)
    return tried


def _merge_health(
    session: Session, sender: Sender, changes: dict[str, Any], drop: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Merge into `sender.health` as it is now, read again under the row's lock: Meta's
    answer can take seconds, and webhook news (a quality change, refused posts) written
    meanwhile must not be overwritten by the copy read before the call."""
    fresh = session.get(Sender, sender.id, with_for_update=True, populate_existing=True)
    target = fresh if fresh is not None else sender
    health = {k: v for k, v in (target.health or {}).items() if k not in drop}
    health.update(changes)
    target.health = health
    return health


def _due(health: dict[str, Any], now: datetime) -> bool:
    last = health.get("templates_tried_at") or health.get("templates_synced_at")
    if not last:
        return True
    try:
        when = datetime.fromisoformat(str(last))
    except ValueError:
        return True
    return now - when >= SYNC_EVERY


def _record_crash(db: Database, sender_id: int, now: datetime) -> None:
    try:
        with db.session() as session:
            sender = session.get(Sender, sender_id)
            if sender is None:
                return
            health = dict(sender.health or {})
            health["templates_tried_at"] = now.isoformat()
            sender.health = health
            events.record(
                session,
                "sender.sync_failed",
                said(
                    "The hourly template sync of %(name)s failed unexpectedly; it is tried "
                    "again in an hour (details in the log).",
                    name=repr(sender.name),
                ),
                level=EventLevel.ERROR,
                data={"sender_id": sender_id},
            )
            session.commit()
    except Exception:
        log.exception("sender %s: could not record the failed template sync", sender_id)


def media_ref(
    session: Session,
    sender: Sender,
    media: Media,
    secret_key: str,
    options: dict[str, Any] | None,
    instance_path: Path,
) -> str:
    """Meta's media id for one of our files on this sender, uploading it at most once a month.

    - Reused while the upload is under 29 days old; re-uploaded after (Meta forgets at 30).
    - Flushed, not committed: the caller's transaction keeps the id with the message it
      prepares. Two threads uploading the same file at once both succeed at Meta; the
      second row clashes on (sender, media) and the first one's id is used.
    - Raises AccountError (the sentence) or SecretUnreadable when the upload fails.
    """
    now = utcnow()
    row = _cached(session, sender.id, media.id)
    if row is not None and now - row.uploaded_at < MEDIA_REUSE:
        return row.provider_media_id
    provider_id = account.upload_media(
        channel_settings(sender, secret_key),
        _options(options),
        media_path(instance_path, media),
        media.mime_type,
        media.original_name,
    )
    if row is not None:
        row.provider_media_id, row.uploaded_at = provider_id, now
        row.expires_at = now + MEDIA_LIFETIME
        session.flush()
        return provider_id
    try:
        with session.begin_nested():
            session.add(
                CloudMedia(
                    sender_id=sender.id,
                    media_id=media.id,
                    provider_media_id=provider_id,
                    uploaded_at=now,
                    expires_at=now + MEDIA_LIFETIME,
                )
            )
    except IntegrityError:
        winner = _cached(session, sender.id, media.id)
        if winner is not None:
            return winner.provider_media_id
        raise
    return provider_id


def _cached(session: Session, sender_id: int, media_id: int) -> CloudMedia | None:
    return session.scalars(
        select(CloudMedia).where(CloudMedia.sender_id == sender_id, CloudMedia.media_id == media_id)
    ).one_or_none()
