"""Saved segments: create, change, delete, count and sample; retarget segments by outcome.

A segment is evaluated when used (a count, a launch, a follow-up step), never stored as a
list of contacts, so it stays current.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import force_locale
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, NotFound, ValidationError
from ..models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    Recurrence,
    RecurrenceState,
    Role,
    Segment,
    User,
    utcnow,
)
from ..words import N_, said
from . import compile, indexes
from . import terms as terms_mod

MAX_NAME = 120
MAX_DESCRIPTION = 500
# Campaigns that will still read their segment (a launch or a follow-up step to come).
LIVE = (
    CampaignStatus.DRAFT,
    CampaignStatus.SCHEDULED,
    CampaignStatus.RUNNING,
    CampaignStatus.PAUSED,
)


def _name(session: Session, name: str, segment_id: int | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(N_("Give the segment a name."), field="name")
    if len(name) > MAX_NAME:
        raise ValidationError(
            said("The name is longer than %(most)d characters.", most=MAX_NAME), field="name"
        )
    clash = session.scalar(select(Segment.id).where(func.lower(Segment.name) == name.lower()))
    if clash is not None and clash != segment_id:
        raise ValidationError(
            said("A segment named %(name)s exists already.", name=repr(name)), field="name"
        )
    return name


def _description(description: str | None) -> str | None:
    text = (description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise ValidationError(
            said("The description is longer than %(most)d characters.", most=MAX_DESCRIPTION),
            field="description",
        )
    return text or None


def _known_ids(session: Session, checked: dict[str, Any]) -> None:
    """Every list and campaign a condition names exists. One that does not (a typo in an
    API call, a list deleted meanwhile) would match whichever row later takes that id."""
    conditions = checked["conditions"]
    lists = {i for c in conditions if c["field"] == "list" for i in c["value"]}
    campaigns = {c["campaign_id"] for c in conditions if c["field"] == "outcome"}
    have_lists = set(session.scalars(select(ContactList.id).where(ContactList.id.in_(lists))))
    have_campaigns = set(session.scalars(select(Campaign.id).where(Campaign.id.in_(campaigns))))
    for i, c in enumerate(conditions):
        if c["field"] == "list":
            missing = [n for n in c["value"] if n not in have_lists]
            if missing:
                raise ValidationError(
                    said(
                        "Condition %(n)d: List: there is no list #%(id)s.", n=i + 1, id=missing[0]
                    ),
                    field=f"conditions.{i}.value",
                )
        if c["field"] == "outcome" and c["campaign_id"] not in have_campaigns:
            raise ValidationError(
                said(
                    "Condition %(n)d: Earlier campaign: there is no campaign #%(id)s.",
                    n=i + 1,
                    id=c["campaign_id"],
                ),
                field=f"conditions.{i}.campaign_id",
            )


def _described(session: Session, checked: dict[str, Any]) -> str:
    """The conditions in English, as an Event stores them, whoever's request this is."""
    with force_locale("en"):
        return terms_mod.describe(checked, session)


def create(
    session: Session, actor: User | None, name: str, description: str | None, terms: object
) -> Segment:
    require_role(actor, Role.OPERATOR)
    checked = terms_mod.validate(terms)
    _known_ids(session, checked)
    segment = Segment(
        name=_name(session, name),
        description=_description(description),
        terms=checked,
        created_by_id=actor.id if actor else None,
    )
    session.add(segment)
    session.flush()
    events.record(
        session,
        "segment.created",
        said(
            "%(actor)s saved the segment %(name)s: %(conditions)s.",
            actor=events.actor_name(actor),
            name=repr(segment.name),
            conditions=_described(session, checked),
        ),
        user=actor,
        data={"segment_id": segment.id},
    )
    indexes.ensure_after_commit(session, checked)
    return segment


def update(
    session: Session,
    actor: User | None,
    segment_id: int,
    name: str,
    description: str | None,
    terms: object,
) -> Segment:
    require_role(actor, Role.OPERATOR)
    segment = get(session, segment_id)
    checked = terms_mod.validate(terms)
    _known_ids(session, checked)
    segment.name = _name(session, name, segment.id)
    segment.description = _description(description)
    segment.terms = checked
    segment.updated_at = utcnow()
    session.flush()
    events.record(
        session,
        "segment.edited",
        said(
            "%(actor)s changed the segment %(name)s: %(conditions)s.",
            actor=events.actor_name(actor),
            name=repr(segment.name),
            conditions=_described(session, checked),
        ),
        user=actor,
        data={"segment_id": segment.id},
    )
    indexes.ensure_after_commit(session, checked)
    return segment


def delete(session: Session, actor: User | None, segment_id: int) -> str:
    """Delete a segment no campaign or series still needs; returns its name."""
    require_role(actor, Role.OPERATOR)
    segment = get(session, segment_id)
    using = session.scalar(
        select(Campaign.name)
        .where(Campaign.segment_id == segment.id, Campaign.status.in_(LIVE))
        .order_by(Campaign.id)
        .limit(1)
    )
    if using is not None:
        raise Conflict(
            said(
                "The campaign %(campaign)s still sends to the segment %(segment)s; "
                "finish or delete it first.",
                campaign=repr(using),
                segment=repr(segment.name),
            )
        )
    series = session.scalar(
        select(Recurrence.name)
        .join(Campaign, Campaign.id == Recurrence.model_campaign_id)
        .where(Campaign.segment_id == segment.id, Recurrence.state != RecurrenceState.STOPPED)
        .limit(1)
    )
    if series is not None:
        raise Conflict(
            said(
                "The repeating campaign %(series)s sends to the segment %(segment)s; "
                "stop it first.",
                series=repr(series),
                segment=repr(segment.name),
            )
        )
    name = segment.name
    session.delete(segment)
    events.record(
        session,
        "segment.deleted",
        said(
            "%(actor)s deleted the segment %(name)s.",
            actor=events.actor_name(actor),
            name=repr(name),
        ),
        user=actor,
        data={"segment_id": segment_id},
    )
    return name


def get(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(said("There is no segment #%(id)s.", id=segment_id))
    return segment


def list_all(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(func.lower(Segment.name))))


def count(
    session: Session, terms: object, now: datetime | None = None, cap: int = 100_000
) -> tuple[int, bool]:
    """(reachable contacts, whether the count stopped at `cap`).

    - Counts over `LIMIT cap + 1`, so a segment of a million stops reading at the cap.
    """
    checked = terms_mod.validate(terms)
    query = compile.reachable_columns(checked, now or utcnow(), Contact.__table__.c.id)
    source = query.limit(cap + 1).subquery()
    n = session.scalar(select(func.count()).select_from(source)) or 0
    return (cap, True) if n > cap else (n, False)


def opted_out_count(
    session: Session, terms: object, now: datetime | None = None, cap: int = 100_000
) -> int:
    """Contacts that match but opted out (left out; shown beside the count), up to `cap`."""
    checked = terms_mod.validate(terms)
    source = compile.opted_out(checked, now or utcnow()).limit(cap).subquery()
    return session.scalar(select(func.count()).select_from(source)) or 0


def sample(
    session: Session, terms: object, now: datetime | None = None, n: int = 10
) -> list[Contact]:
    """The first `n` reachable contacts (by id): what the builder shows under the count."""
    checked = terms_mod.validate(terms)
    ids = (
        compile.reachable(checked, now or utcnow()).order_by(Contact.id).limit(max(0, min(n, 100)))
    )
    found: list[int] = list(session.scalars(ids))
    if not found:
        return []
    by_id = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(found)))}
    return [by_id[i] for i in found if i in by_id]


# --- retargeting by outcome ----------------------------------------------------------

OUTCOME_NAMES = {
    "received": "Received",
    "not_delivered": "Not delivered",
    "delivered_not_read": "Did not read",
    "read_not_replied": "Read, no reply",
    "replied": "Replied",
    "failed": "Failed",
    "failed_retryable": "Failed (worth retrying)",
}


def outcome_terms(campaign_id: int, outcome: str) -> dict[str, Any]:
    return terms_mod.validate(
        {
            "match": "all",
            "conditions": [{"field": "outcome", "campaign_id": campaign_id, "op": outcome}],
        }
    )


def outcome_segment(
    session: Session, actor: User | None, campaign_id: int, outcome: str
) -> Segment:
    """The segment "Did not read: <campaign>" (etc.): found again if made before."""
    require_role(actor, Role.OPERATOR)
    if outcome not in OUTCOME_NAMES:
        raise ValidationError(N_("Choose who to send to."), field="outcome")
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(said("There is no campaign #%(id)s.", id=campaign_id))
    terms = outcome_terms(campaign.id, outcome)
    head = f"{OUTCOME_NAMES[outcome]}: "
    base = head + campaign.name[: MAX_NAME - len(head)]
    candidates = session.scalars(select(Segment).where(Segment.name.like(f"{base[:60]}%")))
    for segment in candidates:
        if segment.terms == terms:
            return segment
    name, n = base, 2
    while session.scalar(select(Segment.id).where(func.lower(Segment.name) == name.lower())):
        suffix = f" ({n})"
        name, n = base[: MAX_NAME - len(suffix)] + suffix, n + 1
    note = said("Made from the results of campaign #%(id)s.", id=campaign.id)
    return create(session, actor, name, note, terms)
