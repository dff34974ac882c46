"""Campaign lifecycle: the one table of allowed transitions, and the actions on it.

draft → scheduled → running ⇄ paused → completed, or cancelled. Pages, the CLI, the API
and the dispatcher all move campaigns through `transition`, so a rule lives in one place.

A campaign may have a finish-by time (`ends_at`). One still sending when it comes pauses
with that reason; nothing is skipped or lost, and it resumes once a person sets a later
time (or none): the unsent customers may still be worth reaching, which only they know.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import events
from ..analytics import stats
from ..auth.permissions import require_role
from ..errors import Conflict, NotFound, ValidationError
from ..models import (
    Campaign,
    CampaignStatus,
    EventLevel,
    Message,
    MessageStatus,
    Role,
    SenderState,
    Template,
    User,
    utcnow,
)
from ..outbox import causes as events_out
from ..senders.disclosure import reason_for
from ..words import N_, said
from . import audience, cloud_launch, followups, retry_round
from .counters import COUNTER_ATTRS, shift_counters, shift_loaded

C = CampaignStatus
S = MessageStatus
messages = Message.__table__
CANCELLED = "cancelled"  # the skip reason of a cancelled campaign's unsent messages

# action → (statuses it may start from, status it leads to). `launch` leads to
# `scheduled` instead when the campaign has a start time in the future.
TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "launch": (frozenset({C.DRAFT}), C.RUNNING),
    "start": (frozenset({C.SCHEDULED}), C.RUNNING),
    "pause": (frozenset({C.RUNNING}), C.PAUSED),
    "resume": (frozenset({C.PAUSED}), C.RUNNING),
    "complete": (frozenset({C.RUNNING}), C.COMPLETED),
    "cancel": (frozenset({C.SCHEDULED, C.RUNNING, C.PAUSED}), C.CANCELLED),
    "retry": (frozenset({C.COMPLETED, C.CANCELLED}), C.RUNNING),
}

# What a campaign in the wrong status refuses (its status a nested word: the reader's own).
CANNOT = {
    "launch": N_("Campaign %(name)s is %(what)s; you cannot launch it now."),
    "start": N_("Campaign %(name)s is %(what)s; you cannot start it now."),
    "pause": N_("Campaign %(name)s is %(what)s; you cannot pause it now."),
    "resume": N_("Campaign %(name)s is %(what)s; you cannot resume it now."),
    "complete": N_("Campaign %(name)s is %(what)s; you cannot complete it now."),
    "cancel": N_("Campaign %(name)s is %(what)s; you cannot cancel it now."),
    "retry": N_("Campaign %(name)s is %(what)s; you cannot retry the failed messages of it now."),
}


# Moves only the dispatcher makes: a scheduled time coming, a campaign running out of work.
ENGINE_ACTIONS = frozenset({"start", "complete"})


def allowed_actions(status: CampaignStatus) -> list[str]:
    """What a user may do next (the page shows exactly these buttons)."""
    return [
        a
        for a, (sources, _) in TRANSITIONS.items()
        if status in sources and a not in ENGINE_ACTIONS
    ]


def actions_for(campaign: Campaign) -> list[str]:
    """`allowed_actions`, minus moves that would only be refused (retry with nothing failed)."""
    actions = allowed_actions(campaign.status)
    if campaign.n_failed + campaign.n_unknown == 0:
        actions = [a for a in actions if a != "retry"]
    if "launch" in actions and recurrence.is_model(campaign):
        actions = [a for a in actions if a != "launch"]  # a series' model: the series sends it
    return actions


def get_campaign(session: Session, campaign_id: int, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        query = query.with_for_update()
    found = session.scalar(query)
    if found is None:
        raise NotFound(said("There is no campaign #%(id)s.", id=campaign_id))
    return found


def transition(campaign: Campaign, action: str, reason: str | None = None) -> CampaignStatus:
    sources, target = TRANSITIONS[action]
    if campaign.status not in sources:
        raise Conflict(said(CANNOT[action], name=repr(campaign.name), what=campaign.status.value))
    campaign.status = target
    campaign.status_reason = reason
    return target


def usable_senders(campaign: Campaign) -> list:
    return [s for s in campaign.senders if s.state == SenderState.LINKED]


def effective_message(session: Session, campaign: Campaign) -> tuple[str, int | None]:
    """(body, attachment id) a campaign sends.

    - Once launched: its frozen snapshot. A draft on a template: the template's body, and
      the campaign's own attachment or else the template's. Otherwise its own.
    """
    if campaign.status != C.DRAFT or campaign.template_id is None:
        return campaign.body, campaign.media_id
    template = session.get(Template, campaign.template_id)
    if template is None:
        return "", campaign.media_id
    return template.body, campaign.media_id or template.media_id


def check_ready(campaign: Campaign, body: str) -> None:
    """Everything a launch needs, each missing piece named."""
    if not campaign.lists and campaign.segment_id is None:
        raise ValidationError(N_("Choose at least one list to send to."), field="lists")
    if not campaign.senders:
        raise ValidationError(N_("Choose at least one sender."), field="senders")
    if not usable_senders(campaign):
        names = ", ".join(f"{s.name} ({s.state.value})" for s in campaign.senders)
        raise ValidationError(
            said("None of the chosen senders can send now: %(names)s.", names=names),
            field="senders",
        )
    if not body.strip() and campaign.cloud_template is None:
        # A WhatsApp template carries its own words; everything else needs a body.
        raise ValidationError(N_("Write the message, or choose a template."), field="body")
    from .rendering import compile_body

    compile_body(body)  # a template error stops the launch, naming the line


def launch(
    session: Session,
    actor: User | None,
    campaign_id: int,
    now: datetime | None = None,
    due_by_zone: dict[str, datetime] | None = None,
) -> Campaign:
    """Freeze the message, insert every recipient in one statement, and start (or schedule).

    - `due_by_zone`: per recipient timezone, when their message is due (a recurring run in
      customers' local time, campaigns/recurrence.py); others get the start time.
    """
    require_role(actor, Role.OPERATOR)
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    recurrence.refuse_model(session, campaign, "launch")  # the series launches its copies
    message = effective_message(session, campaign)  # read while it is still a draft
    transition(campaign, "launch")
    template = session.get(Template, campaign.template_id) if campaign.template_id else None
    # A Cloud API sender needs an approved template (refused here, with the reason, when
    # it has none or Meta no longer approves it); a one-off message goes only to those
    # whose 24-hour window is open, which the dispatcher checks per recipient.
    campaign.cloud_template = cloud_launch.launch_snapshot(
        session, template, campaign.senders, message[1]
    )
    check_ready(campaign, message[0])
    _check_not_ended(campaign, now)
    # The snapshot: editing the template later never changes this campaign.
    campaign.body, campaign.media_id = message
    due = campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else now
    if due > now:
        campaign.status = C.SCHEDULED
    session.flush()
    n = audience.insert_messages(session, campaign, due, due_by_zone, now=now)
    if n == 0 and campaign.segment_id is not None:
        raise ValidationError(
            N_("Nobody to send to: no one who can be messaged matches the segment now."),
            field="segment_id",
        )
    if n == 0:
        raise ValidationError(
            N_("Nobody to send to: the chosen lists are empty or everyone in them opted out."),
            field="lists",
        )
    campaign.total = n
    campaign.n_queued = n
    campaign.launched_at = now
    followups.on_launch(session, campaign, now)  # each follow-up's own campaign
    who = events.actor_name(actor)
    launched = (
        said(
            "%(who)s launched %(name)s to %(n)s recipient(s), starting now.",
            who=who,
            name=repr(campaign.name),
            n=f"{n:,}",
        )
        if campaign.status == C.RUNNING
        else said(
            "%(who)s launched %(name)s to %(n)s recipient(s), starting at %(when)s.",
            who=who,
            name=repr(campaign.name),
            n=f"{n:,}",
            when=_when(due),
        )
    )
    events.record(
        session,
        "campaign.launched",
        launched,
        user=actor,
        campaign_id=campaign.id,
    )
    return campaign


def pause(
    session: Session, actor: User | None, campaign_id: int, reason: str | None = None
) -> Campaign:
    """Pause; a `reason` (shown on the page) marks a pause the person did not ask for."""
    require_role(actor, Role.OPERATOR)
    campaign = get_campaign(session, campaign_id, lock=True)
    transition(campaign, "pause", reason)
    followups.follow_first(session, actor, campaign, "pause", utcnow())
    text = reason or said("%(who)s paused the campaign.", who=events.actor_name(actor))
    level = EventLevel.WARNING if reason else EventLevel.INFO
    events.record(
        session, "campaign.paused", text, user=actor, campaign_id=campaign.id, level=level
    )
    return campaign


def resume(session: Session, actor: User | None, campaign_id: int) -> Campaign:
    require_role(actor, Role.OPERATOR)
    campaign = get_campaign(session, campaign_id, lock=True)
    transition(campaign, "resume")
    _check_not_ended(campaign, utcnow())
    if not usable_senders(campaign):
        # The command line (no actor) is the machine's admin; others get no server paths.
        role = actor.role if actor is not None else Role.ADMIN
        names = ", ".join(
            f"{s.name} ({reason_for(s.state_reason, role) or s.state.value})"
            for s in campaign.senders
        )
        raise Conflict(
            said(
                "No sender of this campaign can send now: %(names)s. Fix one, then resume.",
                names=names,
            )
        )
    followups.follow_first(session, actor, campaign, "resume", utcnow())
    events.record(
        session,
        "campaign.resumed",
        said("%(who)s resumed the campaign.", who=events.actor_name(actor)),
        user=actor,
        campaign_id=campaign.id,
    )
    return campaign


def _check_not_ended(campaign: Campaign, now: datetime) -> None:
    if campaign.ends_at is not None and campaign.ends_at <= now:
        raise Conflict(
            said(
                "The finish-by time of %(name)s (%(when)s) has passed: "
                "set a later one, or none, first.",
                name=repr(campaign.name),
                when=_when(campaign.ends_at),
            )
        )


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def set_finish_by(
    session: Session,
    actor: User | None,
    campaign_id: int,
    ends_at: datetime | None,
    now: datetime | None = None,
) -> Campaign:
    """Move (or clear) a launched campaign's finish-by time; a draft's is set in the wizard."""
    require_role(actor, Role.OPERATOR)
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status not in (C.SCHEDULED, C.RUNNING, C.PAUSED):
        raise Conflict(
            said(
                "Campaign %(name)s is %(what)s; its finish-by time cannot change now.",
                name=repr(campaign.name),
                what=campaign.status.value,
            )
        )
    check_finish_by(ends_at, campaign.scheduled_at, now)
    campaign.ends_at = ends_at
    who = events.actor_name(actor)
    text = (
        said("%(who)s set the finish-by time to %(when)s.", who=who, when=_when(ends_at))
        if ends_at
        else said("%(who)s removed the finish-by time.", who=who)
    )
    events.record(session, "campaign.finish_by", text, user=actor, campaign_id=campaign.id)
    return campaign


def check_finish_by(ends_at: datetime | None, scheduled_at: datetime | None, now: datetime) -> None:
    """A finish-by time must be a real moment after the start."""
    if ends_at is None:
        return
    if ends_at.tzinfo is None:
        raise ValidationError(N_("The finish-by time needs a timezone."), field="ends_at")
    if ends_at <= now:
        raise ValidationError(
            N_("That finish-by time has already passed; choose a later one or leave it empty."),
            field="ends_at",
        )
    if scheduled_at is not None and ends_at <= scheduled_at:
        raise ValidationError(N_("Finish by must be after the start time."), field="ends_at")


def cancel(session: Session, actor: User | None, campaign_id: int) -> Campaign:
    """Stop for good: every message not yet sent is skipped ("campaign cancelled").

    - Those waiting for a retry are queued too, so they are skipped with the rest. A send
      in a lane's hands when the cancel commits is not started (the lane asks before each
      one); whatever a lane hands back afterwards is skipped by `skip_cancelled`.
    """
    require_role(actor, Role.OPERATOR)
    now = utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    transition(campaign, "cancel")
    session.flush()
    n = _skip_unsent(session, campaign.id, now)
    campaign.finished_at = now
    session.expire(campaign, list(COUNTER_ATTRS))
    retry_round.record_end(session, campaign, now)
    followups.follow_first(session, actor, campaign, "cancel", now)
    events.record(
        session,
        "campaign.cancelled",
        said(
            "%(who)s cancelled the campaign; %(n)s unsent message(s) skipped.",
            who=events.actor_name(actor),
            n=f"{n:,}",
        ),
        user=actor,
        campaign_id=campaign.id,
    )
    return campaign


def _skip_unsent(session: Session, campaign_id: int, now: datetime) -> int:
    """Skip a campaign's queued messages, due now or waiting for a retry; how many.

    On PostgreSQL the rows a worker's claim holds at this moment are left alone (SKIP
    LOCKED): the claim takes its messages' rows and then the campaign's (its counters),
    while a cancel holds the campaign's row, so waiting here for those rows would deadlock
    with it. They leave the queue as `sending` anyway, or, should the claim roll back, are
    skipped by the dispatcher's next sweep (`skip_cancelled`).
    """
    unsent = (messages.c.campaign_id == campaign_id) & (messages.c.status == S.QUEUED)
    if session.get_bind().dialect.name == "postgresql":
        unsent = messages.c.id.in_(
            select(messages.c.id).where(unsent).with_for_update(skip_locked=True)
        )
    n = session.execute(
        update(messages)
        .where(unsent)
        .values(
            status=S.SKIPPED,
            error_code=CANCELLED,
            error_detail=N_("Campaign cancelled"),
            updated_at=now,
        )
    ).rowcount
    shift_counters(session, campaign_id, {S.QUEUED: -n, S.SKIPPED: n})
    return n


def skip_cancelled(
    session: Session, now: datetime, campaign_ids: Iterable[int] | None = None
) -> int:
    """Skip what came back to the queue of a cancelled campaign after the cancel: a send a
    lane handed back untouched, a retry's outcome, a crash's recovery. Without this such a
    campaign never reaches 100%.

    - Reads the cancelled campaigns with something queued (their counters), so the sweep
      the dispatcher runs every second costs one small query when there is nothing to do.
    - Called by a lane in the transaction that requeued the messages, after its counters
      moved: on PostgreSQL that holds the campaign's row, so a cancel cannot commit between
      this read of its status and the commit.
    """
    query = select(Campaign.id).where(Campaign.status == C.CANCELLED, Campaign.n_queued > 0)
    if campaign_ids is not None:
        ids = list(campaign_ids)
        if not ids:
            return 0
        query = query.where(Campaign.id.in_(ids))
    return sum(_skip_unsent(session, cid, now) for cid in session.scalars(query).all())


def retry_failed(session: Session, actor: User | None, campaign_id: int) -> int:
    """Queue the failed and unknown messages of a finished campaign again."""
    require_role(actor, Role.OPERATOR)
    now = utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.n_failed + campaign.n_unknown == 0:
        raise Conflict(N_("There are no failed or unknown messages to send again."))
    transition(campaign, "retry")
    _check_not_ended(campaign, now)
    if not usable_senders(campaign):
        raise Conflict(N_("No sender of this campaign can send now; fix one first."))
    again = {}
    for status in (S.FAILED, S.UNKNOWN):
        again[status] = session.execute(
            update(messages)
            .where(messages.c.campaign_id == campaign.id, messages.c.status == status)
            .values(
                status=S.QUEUED,
                attempts=0,
                next_attempt_at=now,
                error_code=None,
                error_detail=None,
                failed_at=None,
                updated_at=now,
            )
        ).rowcount
    failed, unknown = again[S.FAILED], again[S.UNKNOWN]
    stats.forget_failed(session, campaign.id)
    n = failed + unknown
    campaign.finished_at = None
    shift_loaded(session, campaign, {S.FAILED: -failed, S.UNKNOWN: -unknown, S.QUEUED: n})
    events.record(
        session,
        retry_round.STARTED,
        said(
            "%(who)s queued %(failed)s failed and %(unknown)s unknown message(s) again.",
            who=events.actor_name(actor),
            failed=f"{failed:,}",
            unknown=f"{unknown:,}",
        ),
        user=actor,
        campaign_id=campaign.id,
        # What the counters said, to tell this round's own result when it ends.
        data=retry_round.started(campaign, failed, unknown, now),
    )
    return n


def duplicate(session: Session, actor: User | None, campaign_id: int) -> Campaign:
    require_role(actor, Role.OPERATOR)
    source = get_campaign(session, campaign_id)
    copy = Campaign(
        name=f"{source.name} (copy)"[:200],
        template_id=source.template_id,
        body=source.body,
        media_id=source.media_id,
        pacing=dict(source.pacing or {}),
        max_attempts=source.max_attempts,
        text_before_document=source.text_before_document,
        # The segment itself, worked out again at the copy's launch (not the terms
        # frozen at the source's launch): without it a copy had no audience at all.
        segment_id=source.segment_id,
        created_by_id=actor.id if actor else None,
    )
    copy.lists = list(source.lists)
    copy.senders = list(source.senders)
    session.add(copy)
    session.flush()
    followups.copy_steps(session, source.id, copy.id)
    events.record(
        session,
        "campaign.duplicated",
        said(
            "%(who)s copied %(name)s as a new draft.",
            who=events.actor_name(actor),
            name=repr(source.name),
        ),
        user=actor,
        campaign_id=copy.id,
    )
    return copy


def delete_draft(session: Session, actor: User | None, campaign_id: int) -> str:
    require_role(actor, Role.OPERATOR)
    campaign = get_campaign(session, campaign_id)
    if campaign.status != C.DRAFT:
        raise Conflict(N_("Only drafts can be deleted; cancel a launched campaign instead."))
    recurrence.refuse_model(session, campaign, "delete")
    name = campaign.name
    session.delete(campaign)
    events.record(
        session,
        "campaign.deleted",
        said("%(who)s deleted the draft %(name)s.", who=events.actor_name(actor), name=repr(name)),
        user=actor,
    )
    return name


# --- moves made by the dispatcher ---------------------------------------------------


def start_due(session: Session, now: datetime) -> list[int]:
    """Scheduled campaigns whose time has come start running."""
    due = session.scalars(
        select(Campaign)
        .where(Campaign.status == C.SCHEDULED, Campaign.scheduled_at <= now)
        .with_for_update(skip_locked=True)
    ).all()
    for campaign in due:
        transition(campaign, "start")
        events.record(
            session,
            "campaign.started",
            N_("The scheduled start time came; sending."),
            campaign_id=campaign.id,
        )
    return [c.id for c in due]


def complete_finished(session: Session, now: datetime) -> list[int]:
    """Running campaigns with nothing queued or in flight are complete."""
    done = session.scalars(
        select(Campaign)
        .where(Campaign.status == C.RUNNING, Campaign.n_queued == 0, Campaign.n_sending == 0)
        .with_for_update(skip_locked=True)
    ).all()
    # A follow-up whose recipients can still become due is not finished.
    done = [c for c in done if not followups.waiting(session, c, now)]
    for campaign in done:
        transition(campaign, "complete")
        campaign.finished_at = now
        events.record(
            session,
            "campaign.completed",
            said(
                "Finished: %(sent)s sent, %(failed)s failed, %(skipped)s skipped, "
                "%(unknown)s unknown.",
                sent=f"{campaign.n_sent + campaign.n_delivered + campaign.n_read:,}",
                failed=f"{campaign.n_failed:,}",
                skipped=f"{campaign.n_skipped:,}",
                unknown=f"{campaign.n_unknown:,}",
            ),
            campaign_id=campaign.id,
        )
        retry_round.record_end(session, campaign, now)
        events_out.campaign_completed(session, campaign, now)
    return [c.id for c in done]


def pause_expired(session: Session, now: datetime) -> list[int]:
    """Running campaigns whose finish-by time came pause, saying how many are left.

    - Paused, not cancelled: nothing is skipped, and a later time lets a person resume.
    """
    due = session.scalars(
        select(Campaign)
        .where(
            Campaign.status == C.RUNNING,
            Campaign.ends_at.is_not(None),
            Campaign.ends_at <= now,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for campaign in due:
        left = campaign.n_queued + campaign.n_sending
        reason = said(
            "Paused: its finish-by time (%(when)s) came with %(n)s message(s) not sent yet. "
            "Nothing was skipped: set a later finish-by time, or none, then resume.",
            when=_when(campaign.ends_at or now),
            n=f"{left:,}",
        )
        transition(campaign, "pause", reason)
        events.record(
            session,
            "campaign.paused",
            reason,
            level=EventLevel.WARNING,
            campaign_id=campaign.id,
        )
    return [c.id for c in due]


def pause_orphaned(session: Session) -> list[int]:
    """Running campaigns none of whose senders can send (disabled, unlinked) pause, saying why.

    Otherwise such a campaign would sit "running" with nothing moving.
    """
    paused = []
    for campaign in session.scalars(
        select(Campaign).where(Campaign.status == C.RUNNING, Campaign.n_queued > 0)
    ):
        if usable_senders(campaign):
            continue
        states = ", ".join(
            f"{s.name}: {(s.state_reason or s.state.value).rstrip('.')}" for s in campaign.senders
        )
        reason = said("Paused: none of its senders can send (%(states)s).", states=states)
        transition(campaign, "pause", reason)
        events.record(
            session, "campaign.paused", reason, level=EventLevel.ERROR, campaign_id=campaign.id
        )
        paused.append(campaign.id)
    return paused


from . import recurrence  # noqa: E402  (recurrence builds on this module)
