"""The one entry point: everything one delivery carried for one sender, applied at once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from ..channels.heard import Heard
from ..contacts import service as contacts_service
from ..models import Sender
from ..words import said
from . import keywords as kw
from .account import apply_account
from .replies import apply_opt_outs, store_replies
from .statuses import apply_statuses


@dataclass
class Applied:
    """What one `apply` changed, for logs, tests and the caller's own counts."""

    statuses: Counter = field(default_factory=Counter)  # new status → messages moved there
    unmatched_statuses: int = 0
    replies: int = 0
    duplicate_replies: int = 0
    replied: int = 0
    opted_out: int = 0
    account: int = 0

    def add(self, other: Applied) -> None:
        self.statuses.update(other.statuses)
        self.unmatched_statuses += other.unmatched_statuses
        self.replies += other.replies
        self.duplicate_replies += other.duplicate_replies
        self.replied += other.replied
        self.opted_out += other.opted_out
        self.account += other.account


def hold_writes(session: Session, sender_id: int) -> None:
    """On SQLite, take the database's write lock before reading what will be changed.

    SQLite has no row locks: a transaction that reads first and writes later could act on
    rows another process changed in between. Writing first (a no-op on the sender row)
    makes every later read in this transaction current. PostgreSQL locks the rows instead.
    """
    if session.get_bind().dialect.name == "sqlite":
        # Not `SET id = id`: writing the key made SQLite check every row that refers to
        # the sender (35 ms a delivery at 50,000 messages); this column has no index or key.
        session.connection().exec_driver_sql(
            "UPDATE senders SET updated_at = updated_at WHERE id = ?", (sender_id,)
        )


def apply(
    session: Session,
    sender_id: int,
    heard: Heard,
    now: datetime,
    keywords: tuple[str, ...] | None = None,
) -> Applied:
    """Apply what a channel heard for one sender, in the caller's transaction (it commits).

    - `keywords`: the opt-out list; read from the settings when not given.
    - Statuses, replies, opt-out signals and account news move their rows, the campaign
      counters, `message_stats` and the Events together.
    """
    hold_writes(session, sender_id)
    done = Applied()
    effects = apply_statuses(session, sender_id, heard.statuses, now)
    done.statuses = effects.changed
    done.unmatched_statuses = effects.unmatched
    for contact_id, error in effects.opt_out:
        reason = said(
            "WhatsApp reported it: %(reason)s", reason=error.sentence or error.title or error.code
        )
        done.opted_out += contacts_service.opt_out(
            session, None, [contact_id], reason, by="WhatsApp"
        )
    if heard.replies:
        replies = store_replies(
            session, sender_id, heard.replies, keywords or kw.keywords(session), now
        )
        done.replies, done.duplicate_replies = replies.stored, replies.duplicates
        done.replied, done.opted_out = replies.replied, done.opted_out + replies.opted_out
    if heard.opt_outs:
        sender = session.get(Sender, sender_id)
        name = sender.name if sender is not None else "this sender"
        done.opted_out += apply_opt_outs(session, name, heard.opt_outs, now)
    reply_errors = [e for r in heard.replies for e in r.errors if e.kind == "sender"]
    done.account = apply_account(
        session, sender_id, heard.account, [*effects.sender_errors, *reply_errors], now
    )
    return done
