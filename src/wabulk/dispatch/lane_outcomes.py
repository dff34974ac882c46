"""The lane's outcomes: what the channel said about each message, written to the database.

- `_note` turns one channel answer (a result or an error) into the message's outcome:
  sent, failed, retried with backoff, or `unknown` when nothing can prove either way.
- `_write_unsettled` writes a batch's outcomes with their side effects (contacts not on
  WhatsApp or opted out, Events) in one transaction. Until written they stay on the lane:
  a dropped connection or a locked SQLite file fails the step, and the next one writes the
  same outcomes again (the settle is guarded by the lease, so a late write changes nothing
  it should not).
- `_sender_lost`: the account cannot send; its messages go back to the queue and its
  campaigns move to other senders or pause with the reason.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from .. import events
from ..campaigns import lifecycle
from ..channels.base import (
    NOT_ON_WHATSAPP,
    PermanentError,
    SenderUnavailable,
    SendResult,
    TransientError,
    Unconfirmed,
)
from ..models import EventLevel, Sender, SenderState
from ..senders import cooldown
from ..words import said
from . import queue, tally

if TYPE_CHECKING:
    from .lane import _Pending

log = logging.getLogger("wabulk.dispatch.lane")

MAX_BACKOFF_SECONDS = 6 * 3600


@dataclass(slots=True)
class Unsettled:
    """What the channel said about a batch, until it is written to the database."""

    outcomes: list[queue.Outcome]
    # Failed and unknown messages, and any with a screenshot, get an Event in the log.
    logged: list[tuple[_Pending, queue.Outcome, Path | None]]
    unavailable: SenderUnavailable | None
    # Failures that say something about the contact: message ids by effect
    # (`opt_out`, `not_on_whatsapp`), acted on in the settle's transaction.
    effects: dict[str, list[int]] = field(default_factory=dict)
    # Cloud API marketing sends that went through /messages instead, with Meta's reason.
    fallbacks: list[tuple[_Pending, str]] = field(default_factory=list)


class SettlesOutcomes:
    """Mixed into `Lane`: the attributes below are the lane's."""

    db: Any
    sender_id: int
    owner: str
    clock: Any
    rng: random.Random
    pending: deque
    next_send_at: datetime
    sent_today: int
    sent_since_break: int
    sent_at: datetime | None
    looked_since_send: bool
    unsettled: Unsettled | None
    fallback_logged: set[int | None]

    if TYPE_CHECKING:

        def _prepare(self) -> None: ...

        def _look_due(self, now: datetime, wait: float) -> bool: ...

    def _note(self, unsettled: Unsettled, p: _Pending, result: SendResult | Exception) -> None:
        """Turn what the channel said about one message into its outcome."""
        shot: Path | None = None
        self.looked_since_send = False
        self.sent_at = self.clock.now()
        if isinstance(result, SendResult):
            outcome = queue.Outcome(p.claimed.id, p.campaign.id, "sent", result.provider_message_id)
            self.sent_today += 1
            self.sent_since_break += 1
            if result.detail and result.detail.startswith("marketing_fallback"):
                unsettled.fallbacks.append((p, result.detail.partition(":")[2].strip()))
        elif isinstance(result, PermanentError):
            outcome = self._failed(p, result.code or "permanent", str(result))
            shot = result.screenshot
            if result.effect in ("opt_out", "not_on_whatsapp"):
                unsettled.effects.setdefault(result.effect, []).append(p.claimed.id)
        elif isinstance(result, TransientError):
            outcome = self._retry(p, result.code or "transient", str(result), result.retry_after)
            shot = result.screenshot
        elif isinstance(result, Unconfirmed):
            outcome = queue.Outcome(
                p.claimed.id,
                p.campaign.id,
                "unknown",
                error_code=(result.code or "unconfirmed")[:50],
                error_detail=said(
                    "%(problem)s Check the chat, then use “send again” if needed.",
                    problem=result,
                ),
            )
            shot = result.screenshot
        else:  # a bug or a broken channel must not kill the lane
            log.error("channel error sending message %s", p.claimed.id, exc_info=result)
            outcome = self._retry(
                p, "channel_error", said("Unexpected error: %(error)s", error=result), None
            )
        unsettled.outcomes.append(outcome)
        if outcome.kind in ("failed", "unknown") or shot is not None:
            unsettled.logged.append((p, outcome, shot))

    def _write_unsettled(self) -> float:
        unsettled = self.unsettled
        assert unsettled is not None
        outcomes, unavailable = unsettled.outcomes, unsettled.unavailable
        now = self.clock.now()
        with self.db.session() as session:
            queue.settle(session, self.owner, outcomes, now, sender_id=self.sender_id)
            back = {
                o.campaign_id
                for o in outcomes
                if o.kind in ("retry", "requeue") and o.campaign_id is not None
            }
            if back:  # a cancelled campaign's messages never wait in the queue
                lifecycle.skip_cancelled(session, now, back)
            invalid = [o.message_id for o in outcomes if o.error_code == NOT_ON_WHATSAPP]
            invalid += unsettled.effects.get("not_on_whatsapp", [])
            if invalid:
                queue.flag_not_on_whatsapp(session, invalid, now)
            stopped = unsettled.effects.get("opt_out")
            if stopped:
                queue.opt_out_recipients(session, stopped, now)
            for p, why in unsettled.fallbacks:
                if p.campaign.id in self.fallback_logged:
                    continue
                self.fallback_logged.add(p.campaign.id)
                events.record(
                    session,
                    "campaign.marketing_fallback",
                    said(
                        "Marketing templates went through the usual Cloud API route, not the "
                        "Marketing Messages API: %(why)s",
                        why=why,
                    ),
                    level=EventLevel.WARNING,
                    campaign_id=p.campaign.id,
                )
            for p, o, shot in unsettled.logged:
                events.record(
                    session,
                    f"message.{o.kind}",
                    said("%(phone)s: %(detail)s", phone=p.claimed.phone, detail=o.error_detail),
                    level=EventLevel.WARNING,
                    campaign_id=p.campaign.id,
                    message_id=p.claimed.id,
                    data={"screenshot": shot.name} if shot else None,
                )
            if unavailable is not None:
                self._sender_lost(session, unavailable, now)
        self.unsettled = None
        tally.outcomes(self.sender_id, Counter(o.kind for o in outcomes))
        if unavailable is not None:
            return 0.0  # the next step finds the sender unlinked and goes idle
        if not self.pending:
            # Step again at once: the next message is claimed and prepared now, so its
            # preparation overlaps the pacing wait.
            return 0.0
        self._prepare()
        wait = max(0.0, (self.next_send_at - now).total_seconds())
        # A look comes first when one fits in the wait: the next step makes it.
        return 0.0 if self._look_due(now, wait) else wait

    def _failed(self, p: _Pending, code: str, detail: str) -> queue.Outcome:
        return queue.Outcome(
            p.claimed.id, p.campaign.id, "failed", error_code=code[:50], error_detail=detail
        )

    def _retry(
        self, p: _Pending, code: str, detail: str, retry_after: float | None
    ) -> queue.Outcome:
        attempt = p.claimed.attempts + 1
        if attempt >= p.campaign.max_attempts:
            return self._failed(
                p,
                code,
                said("Gave up after %(n)s attempt(s): %(detail)s", n=attempt, detail=detail),
            )
        backoff = p.campaign.retry_seconds * 2 ** (attempt - 1) * self.rng.uniform(0.8, 1.2)
        wait = min(MAX_BACKOFF_SECONDS, max(backoff, retry_after or 0))
        return queue.Outcome(
            p.claimed.id,
            p.campaign.id,
            "retry",
            error_code=code[:50],
            error_detail=said(
                "Attempt %(n)s failed, retrying: %(detail)s", n=attempt, detail=detail
            ),
            next_attempt_at=self.clock.now() + timedelta(seconds=wait),
        )

    def _sender_lost(self, session: Session, exc: SenderUnavailable, now: datetime) -> None:
        """The account cannot send: its messages go back, its campaigns move or pause."""
        self._requeue_pending(session, now)
        sender = session.get(Sender, self.sender_id)
        assert sender is not None
        try:
            state = SenderState(exc.state)
        except ValueError:
            state = SenderState.NEEDS_LINK
        if state == SenderState.LIMITED:
            shot = exc.screenshot.name if exc.screenshot else None
            cooldown.limit(session, sender, str(exc), now, screenshot=shot)
            session.flush()
            lifecycle.pause_orphaned(session)
            return
        sender.state = SenderState.NEEDS_LINK if state == SenderState.LINKED else state
        sender.state_reason = str(exc)[:500]
        events.record(
            session,
            "sender.unavailable",
            said(
                "Sender %(name)s stopped: %(reason)s. Its messages went back to the queue.",
                name=sender.name,
                reason=str(exc).rstrip("."),
            ),
            level=EventLevel.ERROR,
            data={"screenshot": exc.screenshot.name} if exc.screenshot else None,
        )
        session.flush()
        # Campaigns that still have another sender carry on; the others pause, saying why.
        lifecycle.pause_orphaned(session)

    def _requeue_pending(self, session: Session, now: datetime) -> None:
        if self.pending:
            queue.settle(
                session,
                self.owner,
                [queue.Outcome(p.claimed.id, p.campaign.id, "requeue") for p in self.pending],
                now,
                sender_id=self.sender_id,
            )
            lifecycle.skip_cancelled(
                session, now, {p.campaign.id for p in self.pending if p.campaign.id is not None}
            )
            self.pending.clear()
