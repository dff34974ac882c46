"""A "Retry failed" round and its own result: "6 retried: 0 sent, 6 failed again: …".

- No column of its own: the round is an Event. `campaign.retried` carries what the
  counters said when it began (data "round"); when the campaign stops again (completed or
  cancelled) `campaign.retry_result` records what became of those messages.
- Every failed or unknown message is queued by a retry, so the failed and unknown ones at
  the round's end are all the round's own; those skipped since it began (a contact who
  opted out, or is known not to be on WhatsApp) count as failed again, with their reason.
- Reasons use the words of the Analytics page's failure table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..analytics import failures
from ..analytics.queries import failure_label
from ..models import Campaign, Event, Message, MessageStatus
from ..words import N_, said

STARTED = "campaign.retried"
ENDED = "campaign.retry_result"
S = MessageStatus


def sent_count(campaign: Campaign) -> int:
    return campaign.n_sent + campaign.n_delivered + campaign.n_read


def started(campaign: Campaign, failed: int, unknown: int, now: datetime) -> dict[str, Any]:
    """What a `campaign.retried` Event keeps to tell the round's result later."""
    return {
        "round": {
            "queued": failed + unknown,
            "sent_before": sent_count(campaign),
            "at": now.isoformat(),
        }
    }


def latest(session: Session, campaign_id: int) -> Event | None:
    """The newest round's Event: its start, or its result once it ended (None: no round).

    - Through ix_events_campaign_id_id from the newest: a round's result is recorded after
      its last message, so this reads at most the round's own message Events.
    """
    return session.scalar(
        select(Event)
        .where(Event.campaign_id == campaign_id, Event.kind.in_((STARTED, ENDED)))
        .order_by(Event.id.desc())
        .limit(1)
    )


def record_end(session: Session, campaign: Campaign, now: datetime) -> Event | None:
    """The campaign stopped: when a retry round was running, record its result."""
    begun = latest(session, campaign.id)
    if begun is None or begun.kind != STARTED:
        return None
    snapshot = (begun.data or {}).get("round")
    if not snapshot:
        return None  # a round from before results were kept
    session.flush()
    since = datetime.fromisoformat(snapshot["at"])
    reasons: dict[str, int] = {}
    for code, n in session.execute(
        select(Message.error_code, func.count())
        .where(Message.campaign_id == campaign.id, Message.status == S.FAILED)
        .group_by(Message.error_code)
    ).all():
        reasons[code or ""] = reasons.get(code or "", 0) + n
    for code, n in session.execute(
        select(Message.error_code, func.count())
        .where(
            Message.campaign_id == campaign.id,
            Message.status == S.SKIPPED,
            Message.updated_at >= since,
        )
        .group_by(Message.error_code)
    ).all():
        reasons[code or ""] = reasons.get(code or "", 0) + n
    queued = int(snapshot["queued"])
    sent = max(0, sent_count(campaign) - int(snapshot["sent_before"]))
    unknown = campaign.n_unknown
    text = sentence(session, campaign.id, queued, sent, reasons, unknown)
    data = {"round": {**snapshot, "sent": sent, "failed": reasons, "unknown": unknown}}
    return events.record(session, ENDED, text, campaign_id=campaign.id, data=data)


def sentence(
    session: Session,
    campaign_id: int,
    queued: int,
    sent: int,
    reasons: dict[str, int],
    unknown: int,
) -> str:
    """ "6 retried: 0 sent, 6 failed again: Number not on WhatsApp." """
    failed = sum(reasons.values())
    values: dict[str, object] = {
        "queued": f"{queued:,}",
        "sent": f"{sent:,}",
        "failed": f"{failed:,}",
        "unknown": f"{unknown:,}",
    }
    if not failed:
        if unknown:
            return said(
                "%(queued)s retried: %(sent)s sent, %(failed)s failed again, "
                "%(unknown)s not known whether sent.",
                **values,
            )
        return said("%(queued)s retried: %(sent)s sent, %(failed)s failed again.", **values)
    found = failures.sentences(session, reasons, campaign_id)
    labels = [
        (_label(code, found), n) for code, n in sorted(reasons.items(), key=lambda kv: -kv[1])
    ]
    # One reason reads in the reader's words; several are listed as they are.
    reason = labels[0][0] if len(labels) == 1 else "; ".join(f"{x} ({n:,})" for x, n in labels)
    if unknown:
        return said(
            "%(queued)s retried: %(sent)s sent, %(failed)s failed again: %(reason)s, "
            "%(unknown)s not known whether sent.",
            reason=reason,
            **values,
        )
    return said(
        "%(queued)s retried: %(sent)s sent, %(failed)s failed again: %(reason)s.",
        reason=reason,
        **values,
    )


def _label(code: str, said: dict[str, str]) -> str:
    if code == "cancelled":
        return N_("Campaign cancelled")
    if code and failures.is_provider_code(code):
        return failures.provider_label(code, said.get(code))
    return failure_label(code)
