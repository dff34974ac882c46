"""Follow-ups: "after 2 days, to those who have not replied, send template B".

- A draft holds its steps (`CampaignStep`). At launch each step gets a campaign of its own
  (`parent_campaign_id` → the first campaign), with the first one's senders, pacing and
  attempts and the step's message frozen like any launch, so its queue, counters, pace,
  active hours, report and page are those of any campaign.
- The worker matures steps (`mature`): one INSERT … SELECT per step of the recipients whose
  previous message of the sequence (the first campaign's, or the previous step's) went out
  at least the step's delay ago, match its condition, have not opted out, still match the
  first campaign's segment, and are not in the step yet. The NOT EXISTS and the unique
  (campaign, contact) make it idempotent: a worker killed mid-way neither skips nor
  doubles anyone, the next run inserts exactly who is missing.
- A recipient who replied to any message of the sequence, or opted out, between maturing
  and sending is skipped at the claim and again just before the send (dispatch/queue.py,
  dispatch/lane_sending.py), with the reason in plain words.
- A step's campaign does not complete while recipients can still mature into it
  (`waiting`), and pausing, resuming or cancelling the first campaign does the same to
  its steps (`follow_first`).
- Answers written in the Inbox are not campaign messages (no campaign): they count for
  nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, ValidationError
from ..models import (
    Campaign,
    CampaignStatus,
    CampaignStep,
    Contact,
    Media,
    Message,
    MessageStatus,
    Role,
    StepCondition,
    Template,
    User,
)
from ..words import N_, said, said_n
from .audience import QUEUED_COLUMNS

C = CampaignStatus
S = MessageStatus
messages = Message.__table__
contacts = Contact.__table__
campaigns = Campaign.__table__
steps_table = CampaignStep.__table__

MAX_STEPS = 5
MAX_DELAY_MINUTES = 60 * 24 * 90  # 90 days
BODY_MAX = 4096  # WhatsApp's limit for a text message
# How often a worker looks for recipients who became due: delays are counted in hours and
# days, and each look reads the previous campaign's sent messages.
MATURE_SECONDS = 30.0
WENT_OUT = (S.SENT, S.DELIVERED, S.READ)
# Step campaigns recipients may still be added to.
OPEN = (C.RUNNING, C.PAUSED)
CONDITION_WORDS = {
    StepCondition.NOT_REPLIED: N_("who have not replied"),
    StepCondition.NOT_READ: N_("who have not read it (nor replied)"),
    StepCondition.EVERYONE: N_("everyone (except those who opted out)"),
}


@dataclass
class StepInput:
    """One follow-up as a page, the API or a test gives it; validated in `set_steps`."""

    delay_minutes: int
    condition: StepCondition | str = StepCondition.NOT_REPLIED
    template_id: int | None = None
    body: str = ""
    media_id: int | None = None


def steps_of(session: Session, campaign_id: int) -> list[CampaignStep]:
    return list(
        session.scalars(
            select(CampaignStep)
            .where(CampaignStep.campaign_id == campaign_id)
            .order_by(CampaignStep.position)
        )
    )


def describe_delay(minutes: int) -> str:
    """ "2 days", "1 day 6 hours", "3 hours", "45 minutes"."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    text = said_n("%(num)d minute", "%(num)d minutes", mins) if mins else ""
    if hours:
        text = (
            said_n("%(num)d hour %(more)s", "%(num)d hours %(more)s", hours, more=text)
            if text
            else said_n("%(num)d hour", "%(num)d hours", hours)
        )
    if days:
        text = (
            said_n("%(num)d day %(more)s", "%(num)d days %(more)s", days, more=text)
            if text
            else said_n("%(num)d day", "%(num)d days", days)
        )
    return text or said_n("%(num)d minute", "%(num)d minutes", 0)


def _step_problem(i: int, problem: object) -> str:
    """A follow-up's mistake, naming the follow-up ("Follow-up 2: …")."""
    return said("Follow-up %(n)s: %(problem)s", n=i, problem=problem)


def _check_step(session: Session, i: int, raw: StepInput) -> StepInput:
    """One step's input, normalised, or ValidationError naming its field (`steps.2.body`)."""
    where = i + 1
    delay = raw.delay_minutes
    if isinstance(delay, bool) or not isinstance(delay, int):
        raise ValidationError(
            _step_problem(where, N_("the wait must be a whole number.")),
            field=f"steps.{i}.delay",
        )
    if not 1 <= delay <= MAX_DELAY_MINUTES:
        raise ValidationError(
            _step_problem(
                where,
                said(
                    "the wait must be at least a minute and at most %(days)s days.",
                    days=MAX_DELAY_MINUTES // 1440,
                ),
            ),
            field=f"steps.{i}.delay",
        )
    try:
        condition = StepCondition(raw.condition)
    except ValueError:
        raise ValidationError(
            _step_problem(where, N_("choose who gets it (not replied, not read, or everyone).")),
            field=f"steps.{i}.condition",
        ) from None
    body = raw.body or ""
    if "\x00" in body:  # a form can post one; PostgreSQL's text refuses it (a 500)
        raise ValidationError(
            _step_problem(
                where, N_("the message has a character that cannot be sent; type it again.")
            ),
            field=f"steps.{i}.body",
        )
    if len(body) > BODY_MAX:
        raise ValidationError(
            _step_problem(
                where,
                said("a message can have at most %(n)s characters.", n=f"{BODY_MAX:,}"),
            ),
            field=f"steps.{i}.body",
        )
    if raw.template_id is not None:
        if session.get(Template, raw.template_id) is None:
            raise ValidationError(
                _step_problem(where, said("there is no template #%(id)s.", id=raw.template_id)),
                field=f"steps.{i}.template_id",
            )
        body = ""
    elif not body.strip():
        raise ValidationError(
            _step_problem(where, N_("write the message, or choose a template.")),
            field=f"steps.{i}.body",
        )
    if raw.media_id is not None and session.get(Media, raw.media_id) is None:
        raise ValidationError(
            _step_problem(where, said("there is no attachment #%(id)s.", id=raw.media_id)),
            field=f"steps.{i}.media_id",
        )
    if body.strip():
        from .fields import check_fields
        from .rendering import TemplateError, compile_body

        try:
            check_fields(session, compile_body(body).placeholders, body)
        except TemplateError as exc:
            raise ValidationError(_step_problem(where, exc), field=f"steps.{i}.body") from None
    return StepInput(delay, condition, raw.template_id, body, raw.media_id)


def set_steps(
    session: Session, actor: User | None, campaign_id: int, steps: list[StepInput]
) -> list[CampaignStep]:
    """Replace a draft's follow-ups with `steps` (in order); an empty list removes them."""
    from .lifecycle import get_campaign

    require_role(actor, Role.OPERATOR)
    if len(steps) > MAX_STEPS:
        raise ValidationError(
            said("A campaign can have at most %(n)s follow-ups.", n=MAX_STEPS), field="steps"
        )
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.parent_campaign_id is not None:
        raise Conflict(
            N_("A follow-up cannot have follow-ups of its own; add them to the first one.")
        )
    if campaign.status != C.DRAFT:
        raise Conflict(
            said(
                "Campaign %(name)s is %(what)s; follow-ups can only be changed before launch.",
                name=repr(campaign.name),
                what=campaign.status.value,
            )
        )
    checked = [_check_step(session, i, s) for i, s in enumerate(steps)]
    for old in steps_of(session, campaign_id):
        session.delete(old)
    session.flush()  # the old positions go before the new ones take them
    made = []
    for position, s in enumerate(checked, start=1):
        step = CampaignStep(
            campaign_id=campaign_id,
            position=position,
            delay_minutes=s.delay_minutes,
            condition=StepCondition(s.condition),
            template_id=s.template_id,
            body=s.body,
            media_id=s.media_id,
        )
        session.add(step)
        made.append(step)
    session.flush()
    who = events.actor_name(actor)
    text = (
        said(
            "%(who)s set %(n)s follow-up(s) on the draft %(name)s.",
            who=who,
            n=len(made),
            name=repr(campaign.name),
        )
        if made
        else said(
            "%(who)s removed the follow-ups of the draft %(name)s.",
            who=who,
            name=repr(campaign.name),
        )
    )
    events.record(session, "campaign.followups", text, user=actor, campaign_id=campaign_id)
    return made


def copy_steps(session: Session, source_id: int, target_id: int) -> int:
    """Give a duplicated campaign (a new draft) the follow-ups of the one it copies."""
    n = 0
    for step in steps_of(session, source_id):
        session.add(
            CampaignStep(
                campaign_id=target_id,
                position=step.position,
                delay_minutes=step.delay_minutes,
                condition=step.condition,
                template_id=step.template_id,
                body=step.body,
                media_id=step.media_id,
            )
        )
        n += 1
    return n


# --- launch ---------------------------------------------------------------------------


def on_launch(session: Session, campaign: Campaign, now: datetime) -> list[Campaign]:
    """Give each step of a campaign being launched its own running campaign.

    - Called by `lifecycle.launch` after the first campaign's messages are inserted, in its
      transaction: a step that cannot be sent (no message, a Cloud API sender without an
      approved template) stops the launch, naming the follow-up.
    - The step campaign starts empty; recipients are added as they become due (`mature`).
    """
    from . import cloud_launch
    from .rendering import TemplateError, compile_body

    made = []
    for i, step in enumerate(steps_of(session, campaign.id)):
        where = step.position
        template = session.get(Template, step.template_id) if step.template_id else None
        if template is not None:
            body, media_id = template.body, step.media_id or template.media_id
        else:
            body, media_id = step.body, step.media_id
        try:
            snapshot = cloud_launch.launch_snapshot(session, template, campaign.senders, media_id)
            if not body.strip() and snapshot is None:
                raise ValidationError(N_("write the message, or choose a template."), field="body")
            compile_body(body)
        except TemplateError as exc:
            raise ValidationError(_step_problem(where, exc), field=f"steps.{i}.body") from None
        except ValidationError as exc:
            raise ValidationError(
                _step_problem(where, exc), field=f"steps.{i}.{exc.field or 'body'}"
            ) from None
        run = Campaign(
            name=f"{campaign.name} · follow-up {step.position}"[:200],
            status=C.RUNNING,
            parent_campaign_id=campaign.id,
            template_id=step.template_id,
            body=body,
            media_id=media_id,
            cloud_template=snapshot,
            pacing=dict(campaign.pacing or {}),
            max_attempts=campaign.max_attempts,
            text_before_document=campaign.text_before_document,
            launched_at=now,
            created_by_id=campaign.created_by_id,
            is_demo=campaign.is_demo,
        )
        run.senders = list(campaign.senders)
        session.add(run)
        session.flush()
        step.run_campaign_id = run.id
        events.record(
            session,
            "campaign.followup_ready",
            said(
                "Follow-up %(n)s waits: %(detail)s after the previous message, to those %(what)s.",
                n=step.position,
                detail=describe_delay(step.delay_minutes),
                what=CONDITION_WORDS[step.condition],
            ),
            campaign_id=run.id,
        )
        made.append(run)
    return made


# --- maturing -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Due:
    step_id: int
    first_id: int
    run_id: int
    previous_id: int
    delay_minutes: int
    condition: StepCondition
    sequence: tuple[int, ...]
    terms: dict[str, Any] | None


def _open_steps(session: Session, first_ids: list[int] | None = None) -> list[_Due]:
    """Every step whose campaign may still take recipients, with its previous campaign."""
    run = campaigns.alias("run")
    first = campaigns.alias("first")
    query = (
        select(
            steps_table.c.id,
            steps_table.c.campaign_id,
            steps_table.c.position,
            steps_table.c.delay_minutes,
            steps_table.c.condition,
            steps_table.c.run_campaign_id,
            run.c.status,
            first.c.audience_terms,
        )
        .join(run, run.c.id == steps_table.c.run_campaign_id)
        .join(first, first.c.id == steps_table.c.campaign_id)
        .order_by(steps_table.c.campaign_id, steps_table.c.position)
    )
    if first_ids is None:
        # Only sequences with a step still open: finished ones are never read again.
        open_run = campaigns.alias("open_run")
        live = (
            select(steps_table.c.campaign_id)
            .join(open_run, open_run.c.id == steps_table.c.run_campaign_id)
            .where(open_run.c.status.in_(OPEN))
        )
        query = query.where(steps_table.c.campaign_id.in_(live))
    else:
        query = query.where(steps_table.c.campaign_id.in_(first_ids))
    rows = session.execute(query).all()
    by_first: dict[int, list[Any]] = {}
    for r in rows:
        by_first.setdefault(r.campaign_id, []).append(r)
    out = []
    for first_id, chain in by_first.items():
        sequence = (first_id, *(r.run_campaign_id for r in chain))
        previous = first_id
        for r in chain:
            if r.status in OPEN:
                out.append(
                    _Due(
                        r.id,
                        first_id,
                        r.run_campaign_id,
                        previous,
                        r.delay_minutes,
                        StepCondition(r.condition),
                        sequence,
                        # Kept at launch: a segment deleted since still applies.
                        r.audience_terms,
                    )
                )
            previous = r.run_campaign_id
    return out


def _replied(contact_col: Any, sequence: tuple[int, ...]) -> Any:
    """A reply to any message of the sequence (through ix_messages_contact_id)."""
    seq = messages.alias("seq")
    return exists().where(
        seq.c.contact_id == contact_col,
        seq.c.campaign_id.in_(sequence),
        seq.c.replied_at.is_not(None),
    )


def _candidates(due: _Due, now: datetime, *, ripe: bool | None) -> Any:
    """(contact id, phone) of the previous campaign's recipients this step would take.

    `ripe` True: whose delay has passed; False: not yet; None: both.
    """
    prev = messages.alias("prev")
    mine = messages.alias("mine")
    cutoff = now - timedelta(minutes=due.delay_minutes)
    query = (
        select(contacts.c.id, contacts.c.phone)
        .select_from(prev.join(contacts, contacts.c.id == prev.c.contact_id))
        .where(
            prev.c.campaign_id == due.previous_id,
            prev.c.status.in_(WENT_OUT),
            contacts.c.opted_out_at.is_(None),
            contacts.c.not_on_whatsapp_at.is_(None),
            ~exists().where(
                mine.c.campaign_id == due.run_id, mine.c.contact_id == prev.c.contact_id
            ),
        )
    )
    if ripe is True:
        query = query.where(prev.c.sent_at <= cutoff)
    elif ripe is False:
        query = query.where(prev.c.sent_at > cutoff)
    if due.condition in (StepCondition.NOT_REPLIED, StepCondition.NOT_READ):
        query = query.where(~_replied(prev.c.contact_id, due.sequence))
    if due.condition == StepCondition.NOT_READ:
        query = query.where(prev.c.read_at.is_(None), prev.c.status != S.READ)
    if due.terms is not None:
        from ..segments.compile import reachable

        members = reachable(due.terms, now).subquery()
        query = query.where(contacts.c.id.in_(select(members.c[0])))
    return query


def _mature_step(session: Session, due: _Due, now: datetime) -> int:
    """Insert this step's due recipients; how many. The caller holds the step campaign."""
    # The candidates' own SELECT with the row's values (a WHERE of its own, which SQLite
    # needs before ON CONFLICT in an INSERT … SELECT).
    source = _candidates(due, now, ripe=True).with_only_columns(
        literal(due.run_id),
        contacts.c.id,
        contacts.c.phone,
        literal(S.QUEUED.value),
        literal(now, messages.c.next_attempt_at.type),
        literal(now, messages.c.queued_at.type),
        literal(now, messages.c.updated_at.type),
        literal(0),
        maintain_column_froms=True,
    )
    dialect = session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = make(messages).from_select(
        QUEUED_COLUMNS,
        # In contact order, so ids and the sending order do not follow the plan's.
        source.order_by(contacts.c.id),
    )
    # Belt and braces beside the NOT EXISTS: two workers maturing at once never fail.
    stmt = stmt.on_conflict_do_nothing()
    n = session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount
    if n:
        session.execute(
            update(campaigns)
            .where(campaigns.c.id == due.run_id)
            .values(total=campaigns.c.total + n, n_queued=campaigns.c.n_queued + n)
        )
    return max(n, 0)


def _hold(session: Session, run_id: int) -> bool:
    """Lock the step's campaign for this maturing; False when another worker holds it."""
    query = select(campaigns.c.id).where(campaigns.c.id == run_id, campaigns.c.status.in_(OPEN))
    if session.get_bind().dialect.name == "postgresql":
        # Another worker maturing the same step: it inserts the same rows; skip rather than
        # wait. After the lock, the INSERT's own snapshot sees what the last holder wrote.
        query = query.with_for_update(skip_locked=True)
    return session.scalar(query) is not None


def mature(session: Session, now: datetime) -> int:
    """Add every recipient who became due to their step's campaign; how many in all.

    - One INSERT … SELECT per open step; safe to run again at any moment (idempotent).
    - The caller commits.
    """
    total = 0
    for due in _open_steps(session):
        if _hold(session, due.run_id):
            total += _mature_step(session, due, now)
    return total


def waiting(session: Session, campaign: Campaign, now: datetime) -> bool:
    """Whether a running step campaign with nothing queued must not complete yet.

    - True while its previous campaign is still going (or has messages in flight), or
      finished less than the step's delay ago: recipients can still become due.
    - Once that is over, a last `mature` of the step takes whoever is due (a worker that was
      down, a look that came late); True when it added anyone, so they are sent first.
    """
    if campaign.parent_campaign_id is None:
        return False
    chain = [d for d in _open_steps(session, [campaign.parent_campaign_id])]
    due = next((d for d in chain if d.run_id == campaign.id), None)
    if due is None:
        return False
    previous = session.get(Campaign, due.previous_id)
    if previous is None:
        return False
    if previous.status not in (C.COMPLETED, C.CANCELLED):
        return True
    if previous.n_sending or previous.n_queued:
        return True
    finished = previous.finished_at or now
    if finished + timedelta(minutes=due.delay_minutes) > now:
        return True
    return _mature_step(session, due, now) > 0


# --- the first campaign's moves, followed by its steps ----------------------------------


def follow_first(
    session: Session, actor: User | None, campaign: Campaign, action: str, now: datetime
) -> list[int]:
    """Pause, resume or cancel a first campaign's step campaigns with it; their ids."""
    from . import lifecycle

    if campaign.parent_campaign_id is not None:
        return []
    sources, _ = lifecycle.TRANSITIONS[action]
    runs = session.scalars(
        select(Campaign)
        .where(Campaign.parent_campaign_id == campaign.id, Campaign.status.in_(sources))
        .order_by(Campaign.id)
        .with_for_update()
    ).all()
    reason = said("Paused with %(name)s.", name=repr(campaign.name)) if action == "pause" else None
    for run in runs:
        lifecycle.transition(run, action, reason)
        if action == "cancel":
            session.flush()
            n = lifecycle._skip_unsent(session, run.id, now)
            run.finished_at = now
            session.expire(run, ["n_queued", "n_skipped"])
            text = said(
                "Cancelled with %(name)s; %(n)s unsent message(s) skipped.",
                name=repr(campaign.name),
                n=f"{n:,}",
            )
        elif action == "pause":
            text = said("Paused with %(name)s.", name=repr(campaign.name))
        else:
            text = said("Resumed with %(name)s.", name=repr(campaign.name))
        events.record(
            session, f"campaign.{action}d_with_first", text, user=actor, campaign_id=run.id
        )
    return [r.id for r in runs]


def without_steps(query: Select[Any]) -> Select[Any]:
    """A campaigns query without the follow-ups' own campaigns: the list shows them under
    their first campaign's page, not beside it."""
    return query.where(Campaign.parent_campaign_id.is_(None))


def sequence_of(session: Session, campaign: Campaign) -> tuple[int, ...]:
    """The ids of a step campaign's whole sequence (first campaign and every step); () for
    a campaign that is not a step. The claim skips whoever replied to any of them."""
    first = campaign.parent_campaign_id
    if first is None:
        return ()
    ids = session.scalars(
        select(Campaign.id)
        .where(or_(Campaign.id == first, Campaign.parent_campaign_id == first))
        .order_by(Campaign.id)
    ).all()
    return tuple(ids)


def not_yet_due(session: Session, run: Campaign, now: datetime) -> int:
    """Recipients of the previous message who will get this step once its wait is over
    (if they do not reply or opt out meanwhile)."""
    if run.parent_campaign_id is None or run.status not in OPEN:
        return 0
    due = next(
        (d for d in _open_steps(session, [run.parent_campaign_id]) if d.run_id == run.id), None
    )
    if due is None:
        return 0
    query = _candidates(due, now, ripe=False).subquery()
    return session.scalar(select(func.count()).select_from(query)) or 0
