"""A lane sends for one sender: claim, prepare, wait out the pace, send, settle.

- One lane per sender per worker. A WhatsApp Web sender is pinned: its lane holds the
  sender's lease, so one worker (one browser) drives the account. A Cloud API or dry-run
  sender is shared: every worker runs a lane for it at once, without the lease, and the
  account's pace holds for all of them together through the database: send slots under
  the messages-per-second ceiling (senders/slots.py), the daily cap and the tier budget
  counted at claim time under the sender row's lock (lane_shared.py).
- `step()` does what is due now and says how long until more is due, so the same lane
  runs in a thread (real clock) or under a test's fake clock, hours in microseconds.
- Paced sends are settled one by one as they happen. Unpaced sends (dry runs, the
  Cloud API, the benchmark) are claimed in batches and settled about every second as they
  go (lane_sending.py); a crash in between leaves them `sending` for recovery to reconcile
  with the channel, so nothing is lost or sent twice. Before every send the campaign's
  state is read again, so a Pause or Cancel stops a batch within one message.
- The next message is claimed and prepared (a browser opens its chat) before the pacing
  wait, so preparation overlaps the wait.
- Linking by QR (WhatsApp Web) happens here too, in the browser that will send: the lane
  holding the sender reads the QR into the sender row for the Senders page to show.
- Messages this sender left in flight in a dead worker are reconciled through this lane's
  own channel, since a WhatsApp Web account must not be opened in a second browser. Lanes
  of a shared sender in several workers may try the same message at once: each settle of
  it is a guarded UPDATE, so one of them changes it and the others change nothing.
- Answers written in the Inbox (messages with no campaign) are claimed ahead of campaign
  traffic, within the same pace: the pacing wait, the daily cap and active hours hold, so
  an answer takes the next send slot (a campaign message already prepared for that slot
  goes back to the queue untouched), never an extra one.
- A channel that can hear back (WhatsApp Web) looks at its chats in the pacing waits, once
  a wait and more in a long one, and while idle for its hearing period after a
  campaign (lane_hearing.py, hearing.py): reading never delays a send.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..campaigns import cloud_template, followups
from ..campaigns.media import media_path
from ..campaigns.render_budget import limit_for
from ..campaigns.service import DEFAULT_RETRY_SECONDS, pace_overrides, retry_seconds
from ..channels.base import (
    Channel,
    ChannelConfig,
    OutgoingMessage,
    SenderUnavailable,
    TemplateCall,
)
from ..channels.heard import Heard
from ..channels.registry import open_channel
from ..db import Database
from ..models import (
    Campaign,
    CampaignStatus,
    Media,
    Message,
    MessageStatus,
    Sender,
    SenderState,
    campaign_senders,
)
from ..models import Channel as SenderChannel
from ..senders import budget, cloud, warmup
from ..senders import lease as sender_lease
from ..senders.linking import link_step
from ..senders.pace import Pace
from ..senders.secrets import SecretUnreadable
from ..senders.service import sent_today
from . import answer_queue, hearing, queue, recovery
from .clock import Clock, SystemClock
from .lane_hearing import PREPARE_SAMPLES, LooksInWaits
from .lane_outcomes import SettlesOutcomes, Unsettled
from .lane_sending import SendsMessages
from .lane_shared import SharesCaps

log = logging.getLogger(__name__)

MAX_BATCH = 500
# An answer's retries: a new campaign's defaults, as it has no campaign to set them.
ANSWER_ATTEMPTS = 3


@dataclass(slots=True)
class _CampaignInfo:
    id: int | None  # None: the Inbox's answers, sent at the sender's own pace
    body: str
    pace: Pace
    max_attempts: int
    retry_seconds: int
    media: tuple[Path, str, str] | None
    text_before_document: bool = False
    # Cloud API: the approved template snapshot, and the campaign's file as uploaded to
    # this sender's account.
    template: dict[str, Any] | None = None
    media_ref: str | None = None
    # A follow-up's whole sequence: whoever replied to any of it is not sent this one.
    sequence: tuple[int, ...] = ()


@dataclass(slots=True)
class _Pending:
    claimed: queue.Claimed
    campaign: _CampaignInfo


class Lane(LooksInWaits, SettlesOutcomes, SendsMessages, SharesCaps):
    def __init__(
        self,
        db: Database,
        sender_id: int,
        owner: str,
        instance_path: Path,
        lease_seconds: float,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        options: dict[str, object] | None = None,
        secret_key: str = "",
    ) -> None:
        self.db = db
        # Decrypts the sender's stored secrets (Cloud API token) when its channel opens.
        self.secret_key = secret_key
        self.options = dict(options or {})
        self.sender_id = sender_id
        self.owner = owner
        self.instance_path = instance_path
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.channel: Channel | None = None
        self.pending: deque[_Pending] = deque()
        self.next_send_at: datetime = self.clock.now()
        self.sent_since_break = 0
        self.sent_today = 0
        self.day_ends: datetime | None = None
        # The day of the sender's first message (its warm-up), read with sent_today.
        self.first_day: date | None = None
        self.lease_renew_at: datetime | None = None
        self.rotation = 0
        self.batch = 20
        self.seconds_per_send = 0.0
        self._all_capped = False
        self.reconcile_at: datetime | None = None
        self.unsettled: Unsettled | None = None
        self.cut_short = False
        self.cloud = False
        # Shared by every worker (Cloud API, dry run) rather than pinned to this one by the
        # sender's lease (WhatsApp Web); known once the sender is read.
        self.shared = False
        self._counts = None
        self._locked = False
        # The Cloud API tier budget: customers reached in the rolling day, as last counted.
        self.budget: budget.Budget | None = None
        self._held_until: datetime | None = None
        self.fallback_logged: set[int | None] = set()
        # The daily cap answers go under (the sender's own), as last read.
        self.answer_cap: int | None = None
        self._answers_capped = False
        # Hearing back (WhatsApp Web): the sender's settings, when it last looked, whether
        # it looked since the last send, when it last sent and the pace it kept then, how
        # long the last preparations of a chat took (seconds, real time), and what a look
        # heard until it is written (with the `unknown` ids asked).
        self.hearing: hearing.Hearing | None = None
        self.looked_at: datetime | None = None
        self.looked_since_send = False
        self.sent_at: datetime | None = None
        self.pace_seconds = 0.0
        self.prepare_times: deque[float] = deque(maxlen=PREPARE_SAMPLES)
        self.unapplied: tuple[Heard, set[int]] | None = None
        self.unapplied_tries = 0

    # --- the step -----------------------------------------------------------------

    def step(self) -> float | None:
        """Do what is due; seconds until the next thing is due, or None when idle."""
        try:
            return self._step()
        except Exception:
            # A step cut short (a dropped connection, a locked file) may have committed a
            # claim and failed before its messages were in hand: the next step looks.
            self.cut_short = True
            raise

    def _step(self) -> float | None:
        if self.unsettled is not None:
            # Messages the channel already took: their outcomes are written before anything
            # else, or recovery (which skips a live worker's own messages) never would.
            return self._write_unsettled()
        if self.unapplied is not None:
            self._apply_heard()
        now = self.clock.now()
        idle, idle_wait = False, None
        with self.db.session() as session:
            sender = session.get(Sender, self.sender_id)
            if sender is None or not self._hold(session, sender, now):
                self._requeue_pending(session, now)
                return None
            session.commit()  # the lease is kept; never hold SQLite's write lock longer
            if sender.state != SenderState.LINKED:
                self._requeue_pending(session, now)
                if sender.link_requested_until is not None and sender.link_requested_until > now:
                    return link_step(session, sender, self._channel(sender), now)
                return None
            self.hearing = hearing.Hearing.of(sender)
            if self.day_ends is None or now >= self.day_ends:
                self.sent_today = sent_today(session, sender, now)
                self.first_day = warmup.first_day(session, sender)
                self.day_ends = Pace(timezone=sender.timezone).next_day_start(now)
            try:
                channel = self._channel(sender)
            except SecretUnreadable as exc:
                # Its token cannot be read (the secret key changed): a person must paste it.
                self._sender_lost(session, SenderUnavailable(str(exc)), now)
                session.commit()
                return None
            if self.cut_short:
                self._release_orphans(session, now)
                self.cut_short = False
                self.reconcile_at = None
            if self.reconcile_at is None or now >= self.reconcile_at:
                self.reconcile_at = now + self.lease
                recovery.reconcile_sender(
                    session, self.sender_id, channel, self.owner, now, hold=self.lease
                )
                session.commit()
            if not self.pending:
                idle = True
                if (self.next_send_at - now) > self.lease / 2:
                    idle_wait = (self.next_send_at - now).total_seconds()
                elif self._claim(session, sender, now):
                    idle = False
                else:
                    wake = self.day_ends if self._all_capped else None
                    if self._held_until is not None and self._all_capped:
                        wake = min(self._held_until, wake) if wake else self._held_until
                    idle_wait = max(0.0, (wake - now).total_seconds()) if wake else None
        if idle:
            return self._idle(now, idle_wait)
        if not self.pending:  # a look before preparing found the sender stopped
            return 0.0
        first = self.pending[0]
        if first.campaign.pace.daily_cap and self.sent_today >= first.campaign.pace.daily_cap:
            return self._capped(now)
        if now < self.next_send_at:
            return self._wait(now)
        if first.campaign.pace.paced and not self._still_running(first.campaign.id):
            with self.db.session() as session:
                self._requeue_pending(session, now)
            return 0.0
        if first.campaign.id is not None and first.campaign.pace.paced and self._answer_due(now):
            # The slot is the answer's: the campaign message prepared for it goes back to
            # the queue untouched, and the next step claims the answer for this slot.
            with self.db.session() as session:
                self._requeue_pending(session, now)
            return 0.0
        return self._send_due()

    def _channel(self, sender: Sender) -> Channel:
        if self.channel is None:
            settings = dict(sender.settings or {})
            self.cloud = sender.channel == SenderChannel.CLOUD_API
            if self.cloud:
                settings = cloud.channel_settings(sender, self.secret_key)
            config = ChannelConfig(sender.name, settings, self.instance_path, self.options)
            self.channel = open_channel(sender.channel.value, config)
        return self.channel

    def _release_orphans(self, session: Session, now: datetime) -> None:
        """Hand this sender's `sending` messages that this lane holds under its name but not in
        hand to the reconcile that follows, as if their worker had stopped.

        Recovery never touches a live worker's own messages, so without this they would
        wait for a restart. What this lane gave the channel is in `pending` or `unsettled`;
        the rest is reconciled as after a crash: one without a text was never sent and is
        queued again, and the channel is asked about any other.
        """
        in_hand = {p.claimed.id for p in self.pending}
        if self.unsettled is not None:
            in_hand.update(o.message_id for o in self.unsettled.outcomes)
        table = Message.__table__
        orphans = update(table).where(
            table.c.status == MessageStatus.SENDING,
            table.c.lease_owner == self.owner,
            table.c.sender_id == self.sender_id,
        )
        if in_hand:
            orphans = orphans.where(table.c.id.not_in(in_hand))
        session.execute(
            orphans.values(
                lease_owner=f"{self.owner}:cut-short"[:100],
                lease_until=now - timedelta(seconds=1),
            )
        )
        session.commit()

    def _hold(self, session: Session, sender: Sender, now: datetime) -> bool:
        """Take or renew the sender's lease; False when another worker holds it. A shared
        sender has no lease to take: every worker's lane drives it."""
        self.shared = not sender_lease.exclusive(sender.channel)
        if self.shared:
            return True
        if self.lease_renew_at is not None and now < self.lease_renew_at:
            return True
        taken = sender_lease.take(session, self.sender_id, self.owner, now, self.lease)
        self.lease_renew_at = now + self.lease / 4 if taken else None
        return taken

    def _campaigns(self, session: Session, sender: Sender) -> list[_CampaignInfo]:
        rows = session.scalars(
            select(Campaign)
            .join(campaign_senders, campaign_senders.c.campaign_id == Campaign.id)
            .where(
                campaign_senders.c.sender_id == self.sender_id,
                Campaign.status == CampaignStatus.RUNNING,
                Campaign.n_queued > 0,
            )
            .order_by(Campaign.id)
        ).all()
        out = []
        for c in rows:
            media = session.get(Media, c.media_id) if c.media_id else None
            out.append(
                _CampaignInfo(
                    id=c.id,
                    body=c.body,
                    pace=warmup.capped(
                        Pace.for_sender(
                            sender, pace_overrides(c), template=c.cloud_template is not None
                        ),
                        warmup.on_day(sender, self.first_day, self.clock.now()),
                    ),
                    template=c.cloud_template,
                    max_attempts=c.max_attempts,
                    retry_seconds=retry_seconds(c),
                    text_before_document=c.text_before_document,
                    media=(
                        media_path(self.instance_path, media),
                        media.original_name,
                        media.mime_type,
                    )
                    if media
                    else None,
                    media_ref=self._media_ref(session, sender, c, media),
                    sequence=followups.sequence_of(session, c),
                )
            )
        return out

    def _media_ref(
        self, session: Session, sender: Sender, campaign: Campaign, media: Media | None
    ) -> str | None:
        """The campaign's file as uploaded to this Cloud API account (once per file)."""
        if media is None or not self.cloud:
            return None
        return cloud.media_ref(
            session, sender, media, self.secret_key, self.options, self.instance_path
        )

    def _answer_due(self, now: datetime) -> bool:
        cap = self.answer_cap
        if cap and self.sent_today >= cap:
            return False  # a campaign allowed more today than the sender's own cap
        with self.db.session() as session:
            return answer_queue.waiting(session, self.sender_id, now)

    def _answers_info(self, sender: Sender) -> _CampaignInfo:
        """The sender's own pace for its answers: no campaign overrides it."""
        return _CampaignInfo(
            id=None,
            body="",
            pace=warmup.capped(
                Pace.for_sender(sender), warmup.on_day(sender, self.first_day, self.clock.now())
            ),
            max_attempts=ANSWER_ATTEMPTS,
            retry_seconds=DEFAULT_RETRY_SECONDS,
            media=None,
        )

    def _claim_answers(self, session: Session, sender: Sender, now: datetime) -> bool:
        info = self._answers_info(sender)
        pace = info.pace
        self.answer_cap = pace.daily_cap
        self._answers_capped = False
        if pace.daily_cap and self.sent_today >= pace.daily_cap:
            # Asked only once capped: a lane with a capped answer waiting sleeps until the
            # sender's day ends, rather than ending and being started again every second.
            self._answers_capped = answer_queue.waiting(session, self.sender_id, now)
            return False
        if not answer_queue.waiting(session, self.sender_id, now):
            # A read through the claim's index: without answers due, the claim's UPDATE
            # (a write lock on SQLite) is not paid for before every campaign claim.
            return False
        size = 1 if pace.paced else self._batch_size()
        if pace.daily_cap:
            room = self._room_today(session, sender, pace.daily_cap, now)
            if room <= 0:
                self._answers_capped = True
                return False
            size = min(size, room)
        if pace.max_per_second:
            size = min(size, max(1, int(pace.max_per_second)))
        claimed = answer_queue.claim_answers(
            session,
            sender_id=self.sender_id,
            owner=self.owner,
            limit=size,
            now=now,
            lease_until=now + self.lease,
            pace=pace,
        )
        session.commit()  # the claim (and any skip) is durable before any channel is called
        if not claimed:
            return False
        self.pending = deque(_Pending(c, info) for c in claimed)
        self._all_capped = False
        self._look_then_prepare()
        return True

    def _claim(self, session: Session, sender: Sender, now: datetime) -> bool:
        """Claim the next batch: the Inbox's answers first, then running campaigns in turn."""
        self._claim_began()
        self._held_until = None
        if self._claim_answers(session, sender, now):
            return True
        campaigns = self._campaigns(session, sender)
        capped = 0
        for i in range(len(campaigns)):
            info = campaigns[(self.rotation + i) % len(campaigns)]
            assert info.id is not None  # a running campaign's
            if info.pace.daily_cap and self.sent_today >= info.pace.daily_cap:
                capped += 1
                continue
            size = 1 if info.pace.paced else self._batch_size()
            if info.pace.daily_cap:
                room = self._room_today(session, sender, info.pace.daily_cap, now)
                if room <= 0:
                    capped += 1
                    continue
                size = min(size, room)
            if info.pace.max_per_second:
                # One second's worth at a time: a bigger burst would trip the provider's
                # own per-second limit before the wait after it could help.
                size = min(size, max(1, int(info.pace.max_per_second)))
            if info.pace.tier_limit is not None and info.template is not None:
                left = (
                    self._budget_room(session, sender, info.pace.tier_limit, now)
                    if self.shared
                    else self._budget(session, sender, now).left(info.pace.tier_limit)
                )
                if left <= 0:
                    self._budget_hold(session, info.id, info.pace.tier_limit, now)
                    capped += 1
                    continue
                size = min(size, left)
            claimed = queue.claim(
                session,
                campaign_id=info.id,
                body=info.body,
                sender_id=self.sender_id,
                owner=self.owner,
                limit=size,
                now=now,
                lease_until=now + self.lease,
                pace=info.pace,
                text_limit=limit_for(info.media[2] if info.media else None),
                template=info.template,
                sequence=info.sequence,
            )
            if claimed:
                if self.budget is not None and info.template is not None:
                    if not self.shared:  # a shared sender's next claim counts them in flight
                        self.budget.spend(len(claimed))
                    budget.release(session, info.id)
                self.rotation = (self.rotation + i + 1) % len(campaigns)
                self.pending = deque(_Pending(c, info) for c in claimed)
                session.commit()  # the claim is durable before any channel is called
                self._all_capped = False
                self._look_then_prepare()
                return True
        self._all_capped = (bool(campaigns) and capped == len(campaigns)) or (
            self._answers_capped and not campaigns
        )
        session.commit()  # what the page says about a budget hold
        return False

    def _budget(self, session: Session, sender: Sender, now: datetime) -> budget.Budget:
        if self.budget is None or self.budget.stale(now):
            self.budget = budget.count(session, sender, now)
        return self.budget

    def _budget_hold(self, session: Session, campaign_id: int, limit: int, now: datetime) -> None:
        assert self.budget is not None
        # Counted again when a place frees up, at the latest: the lane sleeps until then.
        until = self.budget.frees_at or now + budget.RECOUNT
        budget.hold(session, campaign_id, limit, until)
        self.budget.counted_at = min(self.budget.counted_at, until - budget.RECOUNT)
        if self._held_until is None or until < self._held_until:
            self._held_until = until

    def _batch_size(self) -> int:
        """As many as fit in a quarter of the lease at the observed send time."""
        if self.seconds_per_send <= 0:
            return self.batch
        fit = self.lease.total_seconds() / 4 / self.seconds_per_send
        return max(1, min(MAX_BATCH, int(fit)))

    def _outgoing(self, p: _Pending) -> OutgoingMessage:
        media = p.campaign.media
        call: TemplateCall | None = None
        template = p.campaign.template if p.campaign.id is not None else p.claimed.template
        if self.cloud and template is not None and p.claimed.params is not None:
            call = cloud_template.call_from(template, p.claimed.params)
        return OutgoingMessage(
            message_id=p.claimed.id,
            phone=p.claimed.phone,
            text=p.claimed.text,
            media_path=media[0] if media else None,
            media_name=media[1] if media else None,
            media_mime=media[2] if media else None,
            text_after_document=not p.campaign.text_before_document,
            template=call,
            media_ref=p.campaign.media_ref,
        )

    def _prepare(self) -> None:
        if self.pending and self.channel is not None:
            on_screen = getattr(self.channel, "prepared_for", None)
            if on_screen is not None and on_screen(self.pending[0].claimed.id):
                return  # its chat is on screen already
            started = self.stopwatch()
            try:
                self.channel.prepare(self._outgoing(self.pending[0]))
            except Exception:  # a failed preparation shows up again at send
                log.debug("prepare failed", exc_info=True)
            # What a look leaves free before a send, to prepare again a chat it closed.
            self._prepared(self.stopwatch() - started)

    def _still_running(self, campaign_id: int | None) -> bool:
        if campaign_id is None:
            return True  # an answer has no campaign to pause or cancel
        with self.db.session() as session:
            status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        return status == CampaignStatus.RUNNING

    def _capped(self, now: datetime) -> float:
        with self.db.session() as session:
            self._requeue_pending(session, now)
        assert self.day_ends is not None
        self.next_send_at = max(self.next_send_at, self.day_ends)
        return (self.day_ends - now).total_seconds()

    def close(self) -> None:
        """Give back what this lane holds: its messages, the sender, the channel."""
        now = self.clock.now()
        try:
            if self.unsettled is not None:
                self._write_unsettled()
            if self.unapplied is not None:
                self._apply_heard()
            with self.db.session() as session:
                self._requeue_pending(session, now)
                if not self.shared:
                    sender_lease.release(session, self.sender_id, self.owner)
        finally:
            if self.channel is not None:
                self.channel.close()
                self.channel = None
